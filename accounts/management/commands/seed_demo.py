from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services_demo import demo_seed


class Command(BaseCommand):
    help = "Create (or restore) the demo organization with one user per role, and print their credentials."

    def add_arguments(self, parser):
        parser.add_argument("--password", default="agenthub-demo", help="Password for every demo user.")
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (the demo users have known passwords)."
        )

    def handle(self, *args, password, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Refusing to create users with known passwords while DEBUG is off; pass --force.")
        org, users, lines = demo_seed(password=password)
        self.stdout.write(self.style.SUCCESS(f"Demo organization '{org.name}' (slug: {org.slug}) is ready."))
        self.stdout.write(f"  superuser    admin / {password}  (all organizations, in the admin)")
        for role in Role.values:
            staff = " (admin site)" if users[role].is_staff else ""
            self.stdout.write(f"  {role:<12} {users[role].username} / {password}{staff}")
        for line in lines:
            self.stdout.write(f"  {line}")
