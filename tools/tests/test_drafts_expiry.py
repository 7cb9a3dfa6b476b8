"""Undecided drafts expire: Celery beat runs agents.tasks.drafts_expire every
minute; an expired draft can no longer be decided and the conversation is
told."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from chat.models import Message
from chat.tests.factories import ConversationFactory
from chat.tests.helpers import make_live_agent
from tools.models import Draft, DraftStatus
from tools.tasks import drafts_expire
from tools.tests.factories import DraftFactory

pytestmark = pytest.mark.django_db


def test_beat_sweeps_expired_drafts_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["agents-drafts-expire"]
    assert entry == {"task": "agents.tasks.drafts_expire", "schedule": timedelta(minutes=1)}


def test_the_sweep_expires_only_pending_drafts_past_their_expiry(org_a, org_b):
    agent = make_live_agent(org_a.organization)
    conversation = ConversationFactory(agent=agent)
    now = timezone.now()

    def draft(org, status=DraftStatus.PENDING, expires_in=-60, conv=None):
        return DraftFactory(
            organization=org.organization,
            conversation=conv,
            tool="send_email",
            arguments={},
            status=status,
            expires_at=now + timedelta(seconds=expires_in),
        )

    due = draft(org_a, conv=conversation)
    other_org_due = draft(org_b)
    not_yet = draft(org_a, expires_in=3600)
    confirmed = draft(org_a, status=DraftStatus.CONFIRMED)
    assert drafts_expire.apply().get() == 2
    statuses = {d.pk: Draft.objects.get(pk=d.pk).status for d in (due, other_org_due, not_yet, confirmed)}
    assert statuses == {
        due.pk: DraftStatus.EXPIRED,
        other_org_due.pk: DraftStatus.EXPIRED,
        not_yet.pk: DraftStatus.PENDING,
        confirmed.pk: DraftStatus.CONFIRMED,
    }
    (note,) = Message.objects.filter(conversation=conversation, role="system")
    assert "expired" in note.content and str(due.pk) in note.content
    assert drafts_expire.apply().get() == 0  # nothing left; no second note
    assert Message.objects.filter(conversation=conversation, role="system").count() == 1
