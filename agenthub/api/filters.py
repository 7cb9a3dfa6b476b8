"""Filters every API list uses for dates and times.

django-filter passes a parsed datetime to the database as the client wrote
it. Postgres accepts UTC offsets up to ±15:59 and years 1 to 9999 only, so
``created_after=2026-01-01T00:00:00-16:00`` was a 500. Here an offset no time
zone uses (16 hours or more) is a 400 naming the parameter, and every other
value is converted to UTC first (a year out of range after the shift is a
400 too).
"""

from datetime import UTC, datetime, timedelta

import django_filters
from django import forms
from django.utils import timezone
from django_filters.fields import IsoDateTimeField

MAX_OFFSET = timedelta(hours=16)
RANGE_MESSAGE = "Enter a date and time between 0001-01-01 and 9999-12-31 (UTC), in ISO 8601."


class UtcIsoDateTimeField(IsoDateTimeField):
    default_error_messages = {
        "invalid": "Enter a date and time in ISO 8601, e.g. 2026-01-31T09:00:00Z.",
        "out_of_range": RANGE_MESSAGE,
        "bad_offset": "The UTC offset must be between -15:59 and +15:59, e.g. 2026-01-31T09:00:00+02:00.",
    }

    def to_python(self, value):
        try:
            parsed = super().to_python(value)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["out_of_range"], code="out_of_range") from None
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) >= MAX_OFFSET:
            raise forms.ValidationError(self.error_messages["bad_offset"], code="bad_offset")
        return to_utc(parsed, self.error_messages["out_of_range"])


def to_utc(value: datetime, message: str = RANGE_MESSAGE) -> datetime:
    """``value`` in UTC (naive values are taken as UTC)."""
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise forms.ValidationError(message, code="out_of_range") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """The only datetime filter the API uses (a guard test checks it)."""

    field_class = UtcIsoDateTimeField
