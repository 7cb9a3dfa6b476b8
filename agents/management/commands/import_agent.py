"""``manage.py import_agent --org <slug> FILE [--update] [--user USERNAME]``:
create (or with --update, change) an agent from a YAML document.  FILE may be
``-`` for stdin.  Errors are printed one per field path, and the command
exits non-zero."""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Membership, Organization, User
from agenthub.errors import ApplicationError
from agents import selectors
from agents.services import yamldoc


class Command(BaseCommand):
    help = "Import an agent from a YAML document into an organization (as a draft; publish it afterwards)."

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="The YAML document, or - for stdin.")
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--update", action="store_true", help="Change the agent with the same slug if it exists.")
        parser.add_argument("--user", metavar="USERNAME", help="Record this member as the author.")

    def handle(self, *args, file, org, update, user, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization has the slug '{org}'.")
        author = None
        if user:
            author = User.objects.filter(username=user).first()
            if author is None:
                raise CommandError(f"No user has the username '{user}'.")
            if not Membership.objects.filter(organization=organization, user=author).exists():
                raise CommandError(f"{user} is not a member of {organization.slug}.")
        text = self._read(file)
        try:
            result = yamldoc.agent_import_yaml(organization=organization, user=author, text=text, update=update)
        except ApplicationError as exc:
            fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
            if fields:
                for path, messages in fields.items():
                    for message in messages if isinstance(messages, list) else [messages]:
                        where = "" if path == yamldoc.ROOT else f"{path}: "
                        self.stderr.write(f"  {where}{message}")
                count = sum(len(m) if isinstance(m, list) else 1 for m in fields.values())
                raise CommandError(f"Import failed ({exc.code}): {count} error(s).") from exc
            raise CommandError(f"Import failed ({exc.code}): {exc.message}") from exc
        agent = result.agent
        verb = "Created" if result.created else "Updated"
        self.stdout.write(
            self.style.SUCCESS(f"{verb} agent {agent.slug} ({agent.name}) in {organization.slug}; id {agent.pk}.")
        )
        if result.created:
            self.stdout.write("It is a draft: publish or deploy it to chat with it.")
        elif selectors.agent_has_unpublished_changes(agent):
            self.stdout.write("The changes are not live yet: publish the agent to make them live.")

    def _read(self, file: str) -> bytes:
        limit = settings.API_MAX_BODY_BYTES
        try:
            if file == "-":
                data = sys.stdin.buffer.read(limit + 1)
            else:
                with Path(file).open("rb") as handle:
                    data = handle.read(limit + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}.") from exc
        if len(data) > limit:
            raise CommandError(f"{file} is larger than {limit} bytes.")
        return data
