"""Factories for conversations and messages.  A conversation needs an agent
with a live version (``agents.tests.factories.published_agent``)."""

import factory

from chat.models import Channel, Conversation, Message, MessageRole


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    agent = None  # required: a published agent
    organization = factory.SelfAttribute("agent.organization")
    version = factory.SelfAttribute("agent.live_version")
    channel = Channel.REST


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    organization = factory.SelfAttribute("conversation.organization")
    role = MessageRole.USER
    content = factory.Sequence(lambda n: f"message {n}")
