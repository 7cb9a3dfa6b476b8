"""Invoices and payments.

Invoices are the organization's finances: admins and owners only.  An
invoice is also a printable page (``?format=html``) and a PDF (``.pdf`` or
``?format=pdf``).  Paying: ``POST invoices/<id>/pay`` records a bank transfer
(``manual``) or starts a Stripe Checkout (``stripe``); Stripe's webhook (no
credentials; its signature is checked) marks the invoice paid once."""

import django_filters
from django.http import HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin
from agenthub.errors import ApplicationError
from billing.models import Invoice, InvoiceStatus, Payment, PaymentStatus
from billing.rendering import invoice_html, invoice_pdf
from billing.serializers import (
    InvoiceDetailSerializer,
    InvoiceGenerateSerializer,
    InvoiceSerializer,
    PaymentSerializer,
    PayRequestSerializer,
)
from billing.services import invoices as invoice_services
from billing.services import payments as payment_services

_ERROR = {"$ref": "#/components/schemas/Error"}
INVOICE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invoice's id.")
PAYMENT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The payment's id.")
FORMAT = OpenApiParameter(
    "format", str, enum=["json", "html", "pdf"], description="html: the printable page; pdf: the PDF."
)
WRONG_STATE = OpenApiResponse(_ERROR, description="The invoice is not in a state that allows this (invoice_state).")
MAX_STRIPE_WEBHOOK_BYTES = 256 * 1024


class _OwnFormatParameter(DefaultContentNegotiation):
    """Content negotiation without DRF's ``?format=`` override: on invoices
    that parameter picks the document (json, html or pdf)."""

    class settings:
        URL_FORMAT_OVERRIDE = None


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InvoiceStatus.choices)

    class Meta:
        model = Invoice
        fields = ["status"]


@extend_schema_view(
    list=extend_schema(summary="Invoices, newest period first", parameters=[ORG_HEADER_PARAMETER]),
)
class InvoiceViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    tenant_model = Invoice
    serializer_class = InvoiceSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    write_role = Role.ADMIN
    filter_backends = [DjangoFilterBackend]
    filterset_class = InvoiceFilter
    # ``.pdf`` and ``?format=`` are handled here, not by DRF's renderers.
    format_kwarg = None
    content_negotiation_class = _OwnFormatParameter
    renderer_classes = [JSONRenderer]  # errors in JSON; retrieve() makes the documents itself

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action == "retrieve" else InvoiceSerializer

    @extend_schema(
        summary="One invoice with its lines (or its printable page, or its PDF)",
        parameters=[ORG_HEADER_PARAMETER, INVOICE_ID, FORMAT],
        responses={
            (200, "application/json"): InvoiceDetailSerializer,
            (200, "text/html"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        },
    )
    def retrieve(self, request, *args, **kwargs):
        invoice = self.get_object()
        wanted = kwargs.get("document") or request.query_params.get("format") or "json"
        if wanted == "pdf":
            response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
            response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
            return response
        if wanted == "html":
            return HttpResponse(invoice_html(invoice, show_print_button=True), content_type="text/html; charset=utf-8")
        if wanted != "json":
            raise ApplicationError("format is json, html or pdf.", code="invalid_format")
        return Response(InvoiceDetailSerializer(invoice).data)

    @extend_schema(
        summary="Make the invoice of a month that is over (idempotent: the existing one if there is one)",
        request=InvoiceGenerateSerializer,
        responses={
            201: InvoiceDetailSerializer,
            200: InvoiceDetailSerializer,
            204: OpenApiResponse(description="The month had no usage: no invoice."),
        },
        parameters=[ORG_HEADER_PARAMETER],
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def generate(self, request):
        serializer = InvoiceGenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        period = invoice_services.parse_period(serializer.validated_data["period"])
        result = invoice_services.invoice_generate(organization=self.tenant.organization, period_start=period)
        if result.invoice is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        invoice = result.invoice
        if serializer.validated_data["issue"] and invoice.status == InvoiceStatus.DRAFT:
            invoice = invoice_services.invoice_issue(invoice=invoice)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(InvoiceDetailSerializer(invoice).data, status=code)

    @extend_schema(
        summary="Issue a draft invoice (due after the account's payment terms)",
        request=None,
        responses={200: InvoiceSerializer, 409: WRONG_STATE},
        parameters=[ORG_HEADER_PARAMETER, INVOICE_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def issue(self, request, pk=None):
        return Response(InvoiceSerializer(invoice_services.invoice_issue(invoice=self.get_object())).data)

    @extend_schema(
        summary="Void an unpaid invoice (a new one can then be generated for its month)",
        request=None,
        responses={200: InvoiceSerializer, 409: WRONG_STATE},
        parameters=[ORG_HEADER_PARAMETER, INVOICE_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def void(self, request, pk=None):
        return Response(InvoiceSerializer(invoice_services.invoice_void(invoice=self.get_object())).data)

    @extend_schema(
        summary="Pay an issued invoice: record a bank transfer, or start a Stripe Checkout",
        request=PayRequestSerializer,
        responses={201: PaymentSerializer, 409: OpenApiResponse(_ERROR, description="Not payable, or Stripe is off.")},
        parameters=[ORG_HEADER_PARAMETER, INVOICE_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def pay(self, request, pk=None):
        invoice = self.get_object()
        serializer = PayRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        payment = payment_services.payment_start(
            provider=data["provider"],
            invoice=invoice,
            amount=data.get("amount"),
            reference=data.get("reference", ""),
            actor=self.tenant.user,
        )
        return Response(PaymentSerializer(payment).data, status=status.HTTP_201_CREATED)


class PaymentFilter(django_filters.FilterSet):
    invoice = django_filters.UUIDFilter(field_name="invoice_id")
    provider = django_filters.ChoiceFilter(choices=[("manual", "manual"), ("stripe", "stripe")])
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices)

    class Meta:
        model = Payment
        fields = ["invoice", "provider", "status"]


@extend_schema_view(
    list=extend_schema(summary="Payments of invoices, newest first", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One payment", parameters=[ORG_HEADER_PARAMETER, PAYMENT_ID]),
)
class PaymentViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    tenant_model = Payment
    serializer_class = PaymentSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    filter_backends = [DjangoFilterBackend]
    filterset_class = PaymentFilter

    def get_queryset(self):
        return super().get_queryset().select_related("invoice")


@method_decorator(csrf_exempt, name="dispatch")
class StripeWebhookApi(APIView):
    """Stripe's events.  No credentials: the ``Stripe-Signature`` header
    (HMAC of the raw body with the endpoint's secret, with a timestamp) is
    the proof, checked by the Stripe SDK."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        summary="Stripe webhook (checkout.session.completed marks the invoice paid, once)",
        request=OpenApiTypes.OBJECT,
        responses={
            200: OpenApiTypes.OBJECT,
            400: OpenApiResponse(_ERROR, description="Bad signature or body."),
            409: OpenApiResponse(_ERROR, description="Stripe is not configured here (stripe_not_configured)."),
        },
        auth=[],
    )
    def post(self, request):
        from billing import stripe_gateway

        body = request.body
        if len(body) > MAX_STRIPE_WEBHOOK_BYTES:
            raise ApplicationError("The event is too large.", code="payload_too_large", status_code=413)
        event = stripe_gateway.webhook_event(body, request.headers.get("Stripe-Signature", ""))
        obj = (event.get("data") or {}).get("object") or {}
        outcome = payment_services.stripe_event_apply(
            event_id=str(event.get("id", ""))[:255], event_type=str(event.get("type", ""))[:100], obj=obj
        )
        return Response({"received": True, "outcome": outcome})


@extend_schema_view(retrieve=extend_schema(exclude=True))
class InvoiceDocumentViewSet(InvoiceViewSet):
    """``invoices/<id>.pdf`` and ``.html``: the same as ``?format=pdf`` and
    ``?format=html`` (documented there), for links that name the file."""
