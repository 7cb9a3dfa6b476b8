"""``manage.py usage_generate``: priced ledger rows and their rollup, the
same totals whichever way they are read."""

from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from billing.models import UsageDaily, UsageRecord
from billing.money import to_ledger, token_cost
from billing.tests.factories import list_price

pytestmark = pytest.mark.django_db


def test_generated_rows_are_priced_like_real_calls_and_rolled_up(org_a, capsys):
    list_price("gpt-4o-mini", inp="0.15", out="0.60", cached_input_per_million=Decimal("0.075"))
    call_command("usage_generate", "--org", "alpha", "--rows", "3000", "--days", "30", "--batch", "1000")
    assert "3000 ledger rows for alpha" in capsys.readouterr().out
    rows = UsageRecord.objects.filter(organization=org_a.organization)
    assert rows.count() == 3000
    mini = rows.filter(model="gpt-4o-mini").first()
    assert (mini.input_price, mini.cached_input_price, mini.output_price) == (
        Decimal("0.15"),
        Decimal("0.075"),
        Decimal("0.60"),
    )
    expected = to_ledger(
        token_cost(mini.input_tokens - mini.cached_input_tokens, mini.input_price)
        + token_cost(mini.cached_input_tokens, mini.cached_input_price)
        + token_cost(mini.output_tokens, mini.output_price)
    )
    assert mini.cost == expected
    ledger = rows.aggregate(cost=Sum("cost"), out=Sum("output_tokens"))
    rollup = UsageDaily.objects.filter(organization=org_a.organization).aggregate(
        cost=Sum("cost"), out=Sum("output_tokens"), calls=Sum("calls")
    )
    # Exact on Postgres; SQLite sums decimals as floats (the embedded demo), so to the ledger's precision.
    assert (to_ledger(rollup["cost"]), rollup["out"], rollup["calls"]) == (
        to_ledger(ledger["cost"]),
        ledger["out"],
        3000,
    )
    assert rows.values("agent_id").distinct().count() > 1 and rows.values("channel").distinct().count() == 4
    summary = org_a.client("admin").get("/api/v1/usage/summary", {"group_by": "agent"}).json()
    assert to_ledger(Decimal(summary["totals"]["USD"]["cost"])) == to_ledger(ledger["cost"])


def test_bad_arguments_are_refused(org_a):
    with pytest.raises(CommandError, match="No organization"):
        call_command("usage_generate", "--org", "nope", "--rows", "1")
    with pytest.raises(CommandError, match="--rows"):
        call_command("usage_generate", "--org", "alpha", "--rows", "0")
    with pytest.raises(CommandError, match="--end"):
        call_command("usage_generate", "--org", "alpha", "--rows", "1", "--end", "soon")
