import pytest
from django.core.management import CommandError, call_command

from chat.models import Conversation, Message
from chat.tests.helpers import make_live_agent

pytestmark = pytest.mark.django_db(transaction=True)


def test_chat_command_streams_and_persists(org_a, capsys):
    make_live_agent(org_a.organization)
    call_command("chat", "helper", "--org", "alpha", "--user", "alpha-member", "-m", "hello", "-m", "and more")
    out = capsys.readouterr().out
    assert "Chatting with Helper (v1)" in out
    assert out.count("[complete,") == 2
    conversation = Conversation.objects.get()
    assert conversation.channel == "cli"
    assert list(Message.objects.values_list("role", flat=True)) == ["user", "assistant", "user", "assistant"]
    answer = Message.objects.filter(role="assistant").first().content
    assert answer in out


def test_chat_command_refuses_non_members_and_viewers(org_a, org_b):
    make_live_agent(org_a.organization)
    with pytest.raises(CommandError, match="not a member"):
        call_command("chat", "helper", "--org", "alpha", "--user", "bravo-owner", "-m", "hi")
    with pytest.raises(CommandError, match="permission_denied"):
        call_command("chat", "helper", "--org", "alpha", "--user", "alpha-viewer", "-m", "hi")
    assert not Message.objects.exists()
