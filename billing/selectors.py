"""Reading the ledger: what a caller may see, and summaries from the daily
rollup (a few rows per day, however many calls there were)."""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Count, Sum

from accounts.roles import Role, role_at_least
from accounts.tenancy import Tenant
from billing.models import UsageDaily, UsageRecord

GROUPS = ("day", "agent", "model", "user", "api_key", "channel")
_GROUP_FIELD = {
    "day": "day",
    "agent": "agent_id",
    "model": "model",
    "user": "user_id",
    "api_key": "api_key_id",
    "channel": "channel",
}
_LABEL_FIELD = {"agent_id": "agent_name", "user_id": "user_label", "api_key_id": "api_key_label"}


def sees_all_usage(tenant: Tenant) -> bool:
    return role_at_least(tenant.role, Role.ADMIN)


def _own(queryset, tenant: Tenant):
    """Members see their own usage: the calls they made as themselves, or
    those of the API key they call with."""
    if sees_all_usage(tenant):
        return queryset
    if tenant.api_key is not None:
        return queryset.filter(api_key_id=str(tenant.api_key.pk))
    return queryset.filter(user_id=str(tenant.user.pk) if tenant.user else "-", api_key_id="")


def usage_list_for(tenant: Tenant):
    return _own(UsageRecord.objects.for_organization(tenant.organization), tenant)


def _labels(tenant: Tenant, field: str, keys: list[str]) -> dict[str, str]:
    """Readable names of grouped ids: the newest snapshot of each in the
    ledger (one indexed lookup per id)."""
    label_field = _LABEL_FIELD.get(field)
    if not label_field:
        return {}
    names = {}
    base = UsageRecord.objects.filter(organization=tenant.organization).order_by("-occurred_at")
    for key in keys[:200]:
        if key:
            names[key] = base.filter(**{field: key}).values_list(label_field, flat=True).first() or ""
    return names


def usage_summary(
    *, tenant: Tenant, group_by: str, start: date | None, end: date | None, filters: dict[str, str]
) -> dict:
    """Totals (per currency) and groups of the rollup between ``start`` and
    ``end`` (inclusive days)."""
    rows = _own(UsageDaily.objects.filter(organization=tenant.organization), tenant)
    if start:
        rows = rows.filter(day__gte=start)
    if end:
        rows = rows.filter(day__lte=end)
    for name, value in filters.items():
        rows = rows.filter(**{_GROUP_FIELD[name]: value})
    field = _GROUP_FIELD[group_by]
    sums = {
        "calls_": Sum("calls"),
        "input_tokens_": Sum("input_tokens"),
        "cached_input_tokens_": Sum("cached_input_tokens"),
        "output_tokens_": Sum("output_tokens"),
        "cost_": Sum("cost"),
    }
    grouped = list(rows.values(field, "currency").annotate(n=Count("id"), **sums).order_by(field, "currency"))
    names = _labels(tenant, field, sorted({str(g[field]) for g in grouped}))
    totals: dict[str, dict] = defaultdict(
        lambda: {"calls": 0, "input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0, "cost": Decimal(0)}
    )
    groups = []
    for g in grouped:
        entry = {name.rstrip("_"): g[name] or 0 for name in sums}
        entry["cost"] = Decimal(entry["cost"])
        key = g[field].isoformat() if group_by == "day" else str(g[field])
        groups.append({"key": key, "label": names.get(key, key) or key or "—", "currency": g["currency"], **entry})
        total = totals[g["currency"]]
        for name, value in entry.items():
            total[name] += value
    if group_by != "day":
        groups.sort(key=lambda g: g["cost"], reverse=True)
    return {"group_by": group_by, "start": start, "end": end, "totals": dict(totals), "groups": groups}
