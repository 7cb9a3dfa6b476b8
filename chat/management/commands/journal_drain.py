from django.core.management.base import BaseCommand

from agenthub import journal


class Command(BaseCommand):
    help = (
        "Writes everything waiting in the write-behind journal (conversations, messages and ledger rows of the "
        "OpenAI-compatible API) to the database now, including entries a stopped process had taken."
    )

    def handle(self, *args, **options):
        if not journal.enabled():
            self.stdout.write("The journal is off (no REDIS_URL, or WRITE_BEHIND=false): nothing waits in it.")
            return
        count = journal.drain_all_sync(claim_idle=True)
        self.stdout.write(self.style.SUCCESS(f"Wrote {count} journal entries."))
