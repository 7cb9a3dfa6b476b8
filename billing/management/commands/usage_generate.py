"""``manage.py usage_generate --org SLUG --rows N``: realistic ledger rows
for trying summaries, invoices and dashboards at scale (and for the
benchmarks).  Rows are priced with the model prices in force, like real
calls, then the daily rollup is rebuilt for the range.  On Postgres the rows
are made by the database itself (INSERT … SELECT over generate_series), about
a million every few seconds."""

import random
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.models import ApiKey, Membership, Organization
from billing.models import UsageRecord
from billing.money import to_ledger, token_cost
from billing.services.accounts import billing_account_for
from billing.services.ledger import rollup_rebuild
from billing.services.prices import LIST_PRICES, price_in_force

AGENTS = ["Support desk", "Sales assistant", "Onboarding guide", "Claims helper", "IT helpdesk", "Research aide"]
CHANNELS = ["websocket", "rest", "openai", "cli"]
MODELS = ["gpt-4o-mini", "gpt-4o", "mock-model"]
MAX_ROWS = 50_000_000

_INSERT = """
WITH s AS (
    SELECT g,
           (g %% %(n_agents)s) + 1 AS a,
           ((g / 7) %% %(n_models)s) + 1 AS m,
           ((g / 3) %% %(n_channels)s) + 1 AS c,
           ((g / 11) %% %(n_people)s) + 1 AS p,
           60 + (random() * 1800)::int AS inp,
           (random() * 0.3 * 400)::int AS cached,
           8 + (random() * 600)::int AS outp,
           random() AS r
    FROM generate_series(%(lo)s, %(hi)s) AS g
)
INSERT INTO billing_usagerecord (
    id, call_id, organization_id, occurred_at, agent_id, agent_name, version_id, version_number,
    subject_kind, subject_id, subject_label, user_id, user_label, api_key_id, api_key_label, visitor_id,
    channel, model, provider, input_tokens, cached_input_tokens, output_tokens, estimated, currency,
    input_price, cached_input_price, output_price, priced, cost, latency_ms, ttft_ms, status, error_kind,
    request_id, turn_id, created_at
)
SELECT gen_random_uuid(), %(run)s || '-' || g, %(org)s,
       %(start)s::timestamptz + make_interval(secs => (s.g + s.r) * %(step)s),
       (%(agent_ids)s::text[])[s.a], (%(agent_names)s::text[])[s.a], '', 1,
       'conversation', '', '', (%(user_ids)s::text[])[s.p], (%(user_labels)s::text[])[s.p],
       (%(key_ids)s::text[])[s.p], (%(key_labels)s::text[])[s.p], '',
       (%(channels)s::text[])[s.c], (%(models)s::text[])[s.m], 'openai', s.inp, s.cached, s.outp, false, %(currency)s,
       (%(in_prices)s::numeric[])[s.m], (%(cached_prices)s::numeric[])[s.m], (%(out_prices)s::numeric[])[s.m], true,
       round(((s.inp - s.cached) * (%(in_prices)s::numeric[])[s.m] + s.cached * (%(cached_prices)s::numeric[])[s.m]
              + s.outp * (%(out_prices)s::numeric[])[s.m]) / 1000000, 10),
       200 + s.r * 2500, 80 + s.r * 400, 'ok', '', '', '', now()
FROM s
"""


class Command(BaseCommand):
    help = "Generate N priced ledger rows for an organization over the last days (for trying things at scale)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--rows", type=int, required=True)
        parser.add_argument("--days", type=int, default=90, help="Spread over this many days (default 90).")
        parser.add_argument("--end", help="The last day (YYYY-MM-DD, inclusive; default today).")
        parser.add_argument("--batch", type=int, default=250_000)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, org, rows, days, end, batch, seed, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug '{org}'.")
        if not 1 <= rows <= MAX_ROWS:
            raise CommandError(f"--rows must be between 1 and {MAX_ROWS}.")
        if not 1 <= days <= 3660:
            raise CommandError("--days must be between 1 and 3660.")
        try:
            last_day = datetime.strptime(end, "%Y-%m-%d").date() if end else timezone.now().astimezone(UTC).date()
        except ValueError:
            raise CommandError("--end is a day as YYYY-MM-DD.") from None
        end_at = datetime(last_day.year, last_day.month, last_day.day, tzinfo=UTC) + timedelta(days=1)
        start_at = end_at - timedelta(days=days)
        rng = random.Random(seed)
        plan = self._plan(organization, rng, end_at)
        run = f"gen-{secrets.token_hex(4)}"
        with tqdm(total=rows, unit="rows", unit_scale=True, disable=options["verbosity"] < 1) as bar:
            done = 0
            while done < rows:
                count = min(batch, rows - done)
                if connection.vendor == "postgresql":
                    self._insert_sql(plan, run, done, count, start_at, (days * 86400 - 1) / rows)
                else:
                    self._insert_python(plan, run, done, count, start_at, days, rng)
                done += count
                bar.update(count)
        written = rollup_rebuild(
            organization_id=organization.pk, day_from=start_at.date(), day_to=(end_at - timedelta(days=1)).date()
        )
        self.stdout.write(
            f"{rows} ledger rows for {organization.slug} from {start_at:%Y-%m-%d} to {last_day:%Y-%m-%d}; "
            f"{written} daily rollup rows rebuilt"
        )

    def _plan(self, organization, rng, at) -> dict:
        currency = billing_account_for(organization_id=organization.pk).currency
        people = [
            (str(m.user_id), m.user.email or m.user.get_username(), "", "")
            for m in Membership.objects.filter(organization=organization).select_related("user")[:20]
        ]
        people += [("", "", str(k.pk), k.name) for k in ApiKey.objects.filter(organization=organization)[:10]]
        if not people:
            people = [(str(uuid.UUID(int=rng.getrandbits(128))), f"user{i}@example.com", "", "") for i in range(5)]
        prices = []
        for model in MODELS:
            quote = price_in_force(organization_id=organization.pk, model=model, at=at, currency=currency)
            if quote is not None:
                prices.append((quote.input, quote.cached_input, quote.output))
            else:  # no price configured: the list price
                i, c, o = LIST_PRICES.get(model, ("0.10", "0.05", "0.40"))
                prices.append((Decimal(i), Decimal(c), Decimal(o)))
        return {
            "organization": organization,
            "currency": currency,
            "agents": [(str(uuid.UUID(int=rng.getrandbits(128))), name) for name in AGENTS],
            "people": people,
            "prices": prices,
        }

    def _insert_sql(self, plan, run, offset, count, start_at, step) -> None:
        # In time order (the row number sets the time, with jitter): the
        # ledger's time indexes grow at their end, as they do in production.
        agents, people, prices = plan["agents"], plan["people"], plan["prices"]
        params = {
            "n_agents": len(agents),
            "n_models": len(MODELS),
            "n_channels": len(CHANNELS),
            "n_people": len(people),
            "lo": offset,
            "hi": offset + count - 1,
            "run": run,
            "org": plan["organization"].pk,
            "start": start_at,
            "step": step,
            "agent_ids": [a[0] for a in agents],
            "agent_names": [a[1] for a in agents],
            "user_ids": [p[0] for p in people],
            "user_labels": [p[1] for p in people],
            "key_ids": [p[2] for p in people],
            "key_labels": [p[3] for p in people],
            "channels": CHANNELS,
            "models": MODELS,
            "currency": plan["currency"],
            "in_prices": [p[0] for p in prices],
            "cached_prices": [p[1] if p[1] is not None else p[0] for p in prices],
            "out_prices": [p[2] for p in prices],
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_INSERT, params)

    def _insert_python(self, plan, run, offset, count, start_at, days, rng) -> None:
        agents, people, prices = plan["agents"], plan["people"], plan["prices"]
        rows = []
        for g in range(offset, offset + count):
            m = (g // 7) % len(MODELS)
            inp, cached, out = 60 + rng.randrange(1800), rng.randrange(120), 8 + rng.randrange(600)
            ip, cp, op = prices[m]
            cp = cp if cp is not None else ip
            cost = to_ledger(token_cost(inp - cached, ip) + token_cost(cached, cp) + token_cost(out, op))
            user_id, user_label, key_id, key_label = people[(g // 11) % len(people)]
            agent_id, agent_name = agents[g % len(agents)]
            rows.append(
                UsageRecord(
                    call_id=f"{run}-{g}",
                    organization=plan["organization"],
                    occurred_at=start_at + timedelta(seconds=rng.random() * (days * 86400 - 1)),
                    agent_id=agent_id,
                    agent_name=agent_name,
                    version_number=1,
                    subject_kind="conversation",
                    user_id=user_id,
                    user_label=user_label,
                    api_key_id=key_id,
                    api_key_label=key_label,
                    channel=CHANNELS[(g // 3) % len(CHANNELS)],
                    model=MODELS[m],
                    provider="openai",
                    input_tokens=inp,
                    cached_input_tokens=cached,
                    output_tokens=out,
                    currency=plan["currency"],
                    input_price=ip,
                    cached_input_price=cp,
                    output_price=op,
                    cost=cost,
                    latency_ms=200 + rng.random() * 2500,
                    ttft_ms=80 + rng.random() * 400,
                )
            )
        UsageRecord.objects.bulk_create(rows, batch_size=2000)
