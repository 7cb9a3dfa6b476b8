"""Lift a login lock-out (accounts.lockout): of an account, an address, or both."""

from django.core.management.base import BaseCommand, CommandError

from accounts.lockout import unlock


class Command(BaseCommand):
    help = "Lift the lock on an account (--user) and/or a client address (--address) after failed logins."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="The username whose failed logins to forget.")
        parser.add_argument("--address", help="The client address whose failed logins and API keys to forget.")

    def handle(self, *args, user=None, address=None, **options):
        if not user and not address:
            raise CommandError("Name an account with --user, an address with --address, or both.")
        if user:
            unlock("account", user)
            self.stdout.write(f"Unlocked the account {user}.")
        if address:
            unlock("address", address)
            unlock("apikey", address)
            self.stdout.write(f"Unlocked the address {address}.")
