"""Money is a :class:`~decimal.Decimal` and a currency, never a float.

Amounts are kept to ten decimal places in the ledger (a call of a few tokens
costs a millionth of a dollar) and rounded to the currency's minor unit only
where a person is billed (invoices, payments)."""

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.conf import settings

# ISO 4217 codes accepted for prices, budgets and invoices, with the number
# of minor-unit digits each is billed in.
CURRENCIES: dict[str, int] = {
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CHF": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "HUF": 2,
    "RON": 2,
    "BGN": 2,
    "TRY": 2,
    "ILS": 2,
    "AED": 2,
    "SAR": 2,
    "INR": 2,
    "SGD": 2,
    "HKD": 2,
    "CNY": 2,
    "TWD": 2,
    "THB": 2,
    "MYR": 2,
    "PHP": 2,
    "IDR": 2,
    "MXN": 2,
    "BRL": 2,
    "ARS": 2,
    "CLP": 0,
    "COP": 2,
    "ZAR": 2,
    "NGN": 2,
    "KES": 2,
    "EGP": 2,
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
}

# Ledger precision: 10 decimal places (a 1e-10 unit).
LEDGER_PLACES = Decimal("0.0000000001")
# Budgets count in Redis in integer units of 1e-8 of the currency: exact in a
# Lua number (2**53) up to 90 million, above MAX_LIMIT.
REDIS_UNITS_PER_CURRENCY = 10**8
MAX_LIMIT = Decimal("10000000")  # the largest budget limit accepted
MAX_UNIT_PRICE = Decimal("100000")  # per million tokens


class CurrencyError(ValueError):
    pass


def normalize_currency(code) -> str:
    value = str(code or "").strip().upper()
    if value not in CURRENCIES:
        raise CurrencyError(f"'{code}' is not a supported currency; use an ISO 4217 code such as USD or EUR.")
    return value


def default_currency() -> str:
    return settings.BILLING_DEFAULT_CURRENCY


def minor_unit(currency: str) -> Decimal:
    return Decimal(1).scaleb(-CURRENCIES.get(currency, 2))


def to_minor(amount: Decimal, currency: str) -> Decimal:
    """Rounded half-up to what a person can pay (cents for USD)."""
    return Decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def to_ledger(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(LEDGER_PLACES, rounding=ROUND_HALF_UP)


def to_redis_units(amount: Decimal, *, round_up: bool = False) -> int:
    scaled = Decimal(amount) * REDIS_UNITS_PER_CURRENCY
    return int(scaled.to_integral_value(rounding=ROUND_CEILING if round_up else ROUND_HALF_UP))


def from_redis_units(units: int) -> Decimal:
    return to_ledger(Decimal(int(units)) / REDIS_UNITS_PER_CURRENCY)


def token_cost(tokens: int, price_per_million: Decimal) -> Decimal:
    return Decimal(int(tokens)) * Decimal(price_per_million) / Decimal(1_000_000)


def money_str(amount: Decimal) -> str:
    """A Decimal for JSON: a string, without exponent notation."""
    return format(Decimal(amount).normalize(), "f") if amount else "0"
