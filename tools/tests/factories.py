"""Factories for HTTP tools, drafts and tool invocations.  A draft pends for
an hour by default; pass ``conversation`` or ``agent`` to tie it to a chat."""

from datetime import timedelta

import factory
from django.utils import timezone

from accounts.tests.factories import OrganizationFactory
from tools.models import Draft, DraftStatus, HttpTool, InvocationStatus, ToolInvocation


class HttpToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HttpTool

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"lookup_{n}")
    description = factory.LazyAttribute(lambda o: f"The {o.name} tool.")
    parameters = factory.LazyFunction(
        lambda: {"type": "object", "properties": {"q": {"type": "string"}}, "additionalProperties": False}
    )
    url_template = "https://api.example.com/lookup"


class DraftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Draft

    organization = factory.SubFactory(OrganizationFactory)
    tool = "calculator"
    arguments = factory.LazyFunction(lambda: {"expression": "2+3"})
    summary = factory.LazyAttribute(lambda o: f"{o.tool}(...)")
    requested_role = "member"
    status = DraftStatus.PENDING
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class ToolInvocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToolInvocation

    organization = factory.SubFactory(OrganizationFactory)
    tool = "calculator"
    arguments = factory.LazyFunction(lambda: {"expression": "2+3"})
    status = InvocationStatus.OK
    result = '{"expression": "2+3", "result": 5}'
