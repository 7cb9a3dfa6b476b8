"""An invoice as a printable HTML page and as a PDF made from the same page
(WeasyPrint: no browser, no network; fonts from the system)."""

from django.conf import settings
from django.template.loader import render_to_string

from billing.models import Invoice


def invoice_html(invoice: Invoice, *, show_print_button: bool = False) -> str:
    seller = {
        "name": getattr(settings, "BILLING_SELLER_NAME", "AgentHub"),
        "tagline": "Usage of AI agents",
    }
    return render_to_string(
        "billing/invoice.html",
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "seller": seller,
            "show_print_button": show_print_button,
        },
    )


def invoice_pdf(invoice: Invoice) -> bytes:
    import weasyprint

    # No base URL: the page loads nothing from anywhere.
    return weasyprint.HTML(string=invoice_html(invoice)).write_pdf()
