"""``manage.py export_agent --org <slug> <agent-slug> [-o FILE] [--version-number N]``:
an agent as a YAML document (see :mod:`agents.services.yamldoc` for the format)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from agenthub.errors import ApplicationError
from agents import selectors
from agents.services import yamldoc


class Command(BaseCommand):
    help = "Export an agent as a YAML document (to stdout, or to a file with -o)."

    def add_arguments(self, parser):
        parser.add_argument("agent", metavar="AGENT_SLUG", help="The slug of the agent to export.")
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
        parser.add_argument(
            "--version-number",
            metavar="N",
            type=int,
            help="Export this published version instead of the definition.",
        )

    def handle(self, *args, agent, org, output, version_number, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization has the slug '{org}'.")
        try:
            found = selectors.agent_get_by_slug(organization=organization, slug=agent)
            version = (
                selectors.agent_version_get(agent=found, number=version_number) if version_number is not None else None
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        text = yamldoc.agent_export_yaml(agent=found, version=version)
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror or exc}.") from exc
            self.stderr.write(f"Exported {found.slug} to {output}.")
        else:
            self.stdout.write(text, ending="")
