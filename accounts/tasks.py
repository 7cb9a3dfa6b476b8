import logging

from celery import shared_task
from django.core.management import call_command

logger = logging.getLogger(__name__)


@shared_task(name="accounts.tasks.flush_expired_tokens")
def flush_expired_tokens() -> None:
    """Drops expired refresh tokens from the outstanding/blacklist tables
    (scheduled by beat; they would otherwise grow forever)."""
    call_command("flushexpiredtokens", verbosity=0)
    logger.info("flushed expired refresh tokens")
