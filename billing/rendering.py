"""An invoice as a printable HTML page and as a PDF made from the same page
(WeasyPrint: no browser, no network; fonts from the system)."""

from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string

from billing.models import Invoice
from billing.money import money_str


def _price(value: Decimal) -> str:
    """A unit price with the decimals it needs, at least two: 0.10, 0.075."""
    text = format(Decimal(value).normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def _lines(invoice: Invoice) -> list[dict]:
    return [
        {
            "description": line.description,
            "calls": f"{line.calls:,}",
            "input_tokens": f"{line.input_tokens:,}",
            "cached_input_tokens": f"{line.cached_input_tokens:,}" if line.cached_input_tokens else "",
            "output_tokens": f"{line.output_tokens:,}",
            "input_price": _price(line.input_price),
            "cached_input_price": _price(line.cached_input_price),
            "output_price": _price(line.output_price),
            "amount": f"{line.amount:,}",
        }
        for line in invoice.lines.all()
    ]


def invoice_html(invoice: Invoice, *, show_print_button: bool = False) -> str:
    seller = {
        "name": getattr(settings, "BILLING_SELLER_NAME", "AgentHub"),
        "tagline": "Usage of AI agents",
    }
    return render_to_string(
        "billing/invoice.html",
        {
            "invoice": invoice,
            "lines": _lines(invoice),
            "ledger_cost": money_str(invoice.ledger_cost),
            "seller": seller,
            "show_print_button": show_print_button,
        },
    )


def invoice_pdf(invoice: Invoice) -> bytes:
    import weasyprint

    # No base URL: the page loads nothing from anywhere.
    return weasyprint.HTML(string=invoice_html(invoice)).write_pdf()
