"""Invoices (made by generation, changed only by their actions: issue, void,
record a payment) and payments (a manual payment is recorded on the add
form; Stripe's arrive by webhook)."""

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import ADMIN_ROLES, ReadOnlyAdminMixin, RoleGatedAdmin, managed_organization_ids
from agenthub.errors import ApplicationError
from billing.models import Invoice, InvoiceLine, InvoiceStatus, Payment
from billing.rendering import invoice_html, invoice_pdf
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    fields = ("description", "calls", "input_tokens", "output_tokens", "input_price", "output_price", "amount")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    can_delete = False
    fields = ("provider", "status", "amount", "reference", "external_id", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdminMixin, RoleGatedAdmin):
    staff_roles = ADMIN_ROLES
    list_display = ("number", "organization", "period_start", "status", "total_display", "balance", "documents")
    list_filter = ("status", "currency")
    search_fields = ("number",)
    inlines = [InvoiceLineInline, PaymentInline]
    actions = ["issue", "void", "generate_last_month"]
    readonly_fields = (
        "number",
        "organization",
        "status",
        "period_start",
        "period_end",
        "currency",
        "subtotal",
        "tax_rate",
        "tax",
        "total",
        "amount_paid",
        "ledger_cost",
        "issued_at",
        "due_date",
        "paid_at",
        "voided_at",
        "documents",
    )
    fields = readonly_fields

    @admin.display(description="total", ordering="total")
    def total_display(self, obj):
        return f"{obj.total} {obj.currency}"

    @admin.display(description="balance due")
    def balance(self, obj):
        return f"{obj.balance_due} {obj.currency}"

    @admin.display(description="document")
    def documents(self, obj):
        return format_html(
            '<a href="{}" target="_blank">page</a> · <a href="{}">PDF</a> · <a href="{}">record payment</a>',
            reverse("admin:billing_invoice_document", args=[obj.pk, "html"]),
            reverse("admin:billing_invoice_document", args=[obj.pk, "pdf"]),
            reverse("admin:billing_payment_add") + f"?invoice={obj.pk}",
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.document_view)
        return [
            path("<uuid:pk>/document.<str:kind>", view, name="billing_invoice_document"),
            *super().get_urls(),
        ]

    def document_view(self, request, pk, kind):
        invoice = get_object_or_404(self.get_queryset(request), pk=pk)
        if kind == "pdf":
            response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
            response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
            return response
        if kind == "html":
            return HttpResponse(invoice_html(invoice, show_print_button=True))
        raise Http404("No such document.")

    def _each(self, request, queryset, service, done: str):
        count = 0
        for invoice in queryset:
            try:
                service(invoice=invoice)
                count += 1
            except ApplicationError as exc:
                messages.error(request, exc.message)
        if count:
            messages.success(request, f"{count} invoice(s) {done}.")

    @admin.action(description="Issue the selected draft invoices")
    def issue(self, request, queryset):
        self._each(request, queryset, invoice_services.invoice_issue, "issued")

    @admin.action(description="Void the selected unpaid invoices")
    def void(self, request, queryset):
        self._each(request, queryset, invoice_services.invoice_void, "voided")

    @admin.action(description="Generate last month's invoices (of your organizations)")
    def generate_last_month(self, request, queryset):
        from accounts.models import Organization

        period = invoice_services.previous_month()
        organizations = Organization.objects.all()
        if not request.user.is_superuser:
            organizations = organizations.filter(pk__in=managed_organization_ids(request.user, ADMIN_ROLES))
        made = 0
        for organization in organizations:
            made += invoice_services.invoice_generate(organization=organization, period_start=period).created
        messages.success(request, f"{period:%Y-%m}: {made} invoice(s) made; existing ones were kept.")

    def changelist_view(self, request, extra_context=None):
        # The generate action needs no selection.
        if request.POST.get("action") == "generate_last_month" and not request.POST.getlist("_selected_action"):
            post = request.POST.copy()
            post.setlist(
                "_selected_action",
                [str(pk) for pk in self.get_queryset(request).values_list("pk", flat=True)[:1]] or ["0"],
            )
            post["select_across"] = "0"
            request.POST = post
        return super().changelist_view(request, extra_context)


class ManualPaymentForm(forms.ModelForm):
    """A bank transfer received for an issued invoice."""

    class Meta:
        model = Payment
        fields = ("invoice", "amount", "reference")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        invoices = Invoice.objects.filter(status=InvoiceStatus.ISSUED)
        if request is not None and not request.user.is_superuser:
            invoices = invoices.filter(organization_id__in=managed_organization_ids(request.user, ADMIN_ROLES))
        self.fields["invoice"].queryset = invoices
        self.fields["reference"].help_text = "The bank's reference of the transfer."
        self._request = request

    def clean(self):
        data = super().clean()
        invoice, amount = data.get("invoice"), data.get("amount")
        if invoice is not None and amount is not None:
            try:
                self.instance = payment_services.payment_record_manual(
                    invoice=invoice,
                    amount=amount,
                    reference=data.get("reference", ""),
                    recorded_by=self._request.user if self._request else None,
                )
            except ApplicationError as exc:
                raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Payment)
class PaymentAdmin(RoleGatedAdmin):
    staff_roles = ADMIN_ROLES
    list_display = ("invoice", "organization", "provider", "status", "amount", "currency", "reference", "created_at")
    list_filter = ("provider", "status")
    search_fields = ("invoice__number", "reference", "external_id")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            form = ManualPaymentForm

            class Bound(form):
                def __init__(self, *args, **kw):
                    super().__init__(*args, request=request, **kw)

            return Bound
        return super().get_form(request, obj, change, **kwargs)

    def get_changeform_initial_data(self, request):
        return {"invoice": request.GET.get("invoice")}

    def has_change_permission(self, request, obj=None):
        return False  # a payment is a record

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        pass  # recorded by the form's clean, through the payment service

    def save_related(self, request, form, formsets, change):
        pass
