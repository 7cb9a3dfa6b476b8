import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.roles import Role
from accounts.services_demo import DEMO_PASSWORD, demo_seed

UNCHANGED = "(password unchanged)"


class Command(BaseCommand):
    help = (
        "Create the demo organization with one user per role and demo data, and print the logins. "
        "What exists is left as it is (passwords, sessions, edited agents); --reset restores the original state."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=DEMO_PASSWORD,
            help="Password for the demo users created now (every demo user with --reset).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Restore the original demo state: set every demo user's password (logging them out), "
            "roles and flags, and restore and republish the demo data.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (the demo users have known passwords)."
        )

    def handle(self, *args, password, reset, force, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Refusing to create users with known passwords while DEBUG is off; pass --force.")
        seed = demo_seed(password=password, reset=reset)
        org, users = seed.organization, seed.users

        def login(user):
            return f"{user.username} / {password if user.username in seed.password_set else UNCHANGED}"

        self.stdout.write(self.style.SUCCESS(f"Demo organization '{org.name}' (slug: {org.slug}) is ready."))
        self.stdout.write(f"  superuser    {login(seed.superuser)}  (all organizations, in the admin)")
        for role in Role.values:
            staff = " (admin site)" if users[role].is_staff else ""
            self.stdout.write(f"  {role:<12} {login(users[role])}{staff}")
        if any(user.username not in seed.password_set for user in (seed.superuser, *users.values())):
            reset_command = "manage.py seed_demo --reset"
            if password != DEMO_PASSWORD:
                reset_command += f" --password {shlex.quote(password)}"
            self.stdout.write(
                f"  {UNCHANGED}: these users already existed and kept their password: {DEMO_PASSWORD} unless\n"
                "               another --password was given when they were first seeded or it was changed since.\n"
                f"               To set it to {password} (this logs them out and restores the demo data): "
                f"{reset_command}"
            )
        for line in seed.lines:
            self.stdout.write(f"  {line}")
