"""Celery entry points of the chat app."""

from celery import shared_task

from agenthub import journal


@shared_task(name="chat.tasks.journal_drain")
def journal_drain() -> int:
    """Beat's backstop for the write-behind journal: applies what waits in
    it, including entries a dead web process had taken (the web processes
    drain it themselves while they run)."""
    return journal.drain_all_sync(claim_idle=True)
