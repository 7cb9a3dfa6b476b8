"""Date filters answer 400, never 500, for any ISO 8601 value; every
filterset uses the safe datetime filter."""

import importlib
import inspect
from pathlib import Path

import django_filters
import pytest

from agenthub.api.filters import DateTimeFilter

ROOT = Path(__file__).resolve().parents[2]
URL = "/api/v1/tool-invocations"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T00:00:00-16:00",  # beyond Postgres' ±15:59
        "2026-01-01T00:00:00+23:59",
        "0001-01-01T00:00:00+14:00",  # year 0 once in UTC
        "9999-12-31T23:59:59-10:00",  # year 10000 once in UTC
        "99999-01-01T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "yesterday",
        "2026-01-01T25:00:00Z",
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_out_of_range_or_malformed_dates_are_400(org_a, name, value):
    response = org_a.client("operator").get(URL, {name: value})
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    assert name in body["details"]["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", ["2026-01-01T00:00:00-15:59", "2026-01-01T00:00:00+15:00", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00"]
)
def test_valid_dates_filter(org_a, value):
    response = org_a.client("operator").get(URL, {"created_after": value})
    assert response.status_code == 200, response.content


def _filtersets():
    for path in ROOT.glob("*/**/*.py"):
        parts = path.relative_to(ROOT).parts
        if parts[0] in {".venv", "bench", "docker"} or "tests" in parts or "migrations" in parts:
            continue
        module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        source = path.read_text()
        if "FilterSet" not in source:
            continue
        module = importlib.import_module(module_name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, django_filters.FilterSet) and cls.__module__ == module_name:
                yield cls


def test_every_date_filter_is_the_utc_one():
    found = list(_filtersets())
    assert len(found) >= 4
    offenders = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in found
        for name, flt in cls.base_filters.items()
        if isinstance(flt, django_filters.DateTimeFilter | django_filters.DateFilter | django_filters.TimeFilter)
        and not isinstance(flt, DateTimeFilter)
    ]
    assert offenders == []
