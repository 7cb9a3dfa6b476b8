"""Model prices and the organization's billing account.

Every member reads the prices that apply (the global list prices and the
organization's own); admins and owners add, change and withdraw the
organization's own prices that have not started yet (global prices are the
platform's, set in the admin by superusers).  The billing account is for
admins and owners."""

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role
from accounts.tenancy import TenantScopedMixin, tenant_for_request
from agenthub.errors import ForbiddenError
from billing.models import Price
from billing.serializers import (
    BillingAccountSerializer,
    BillingAccountWriteSerializer,
    PriceSerializer,
    PriceUpdateSerializer,
    PriceWriteSerializer,
)
from billing.services import prices as price_services
from billing.services.accounts import billing_account_for, billing_account_update

PRICE_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The price's id.")


@extend_schema_view(
    list=extend_schema(
        summary="Prices per million tokens: the list prices and the organization's own",
        parameters=[ORG_HEADER_PARAMETER, OpenApiParameter("model", str, description="Only this model.")],
    ),
    retrieve=extend_schema(summary="One price", parameters=[ORG_HEADER_PARAMETER, PRICE_ID]),
    create=extend_schema(
        summary="The organization's own price for a model, from effective_from on",
        request=PriceWriteSerializer,
        responses={201: PriceSerializer},
        parameters=[ORG_HEADER_PARAMETER],
    ),
    partial_update=extend_schema(
        summary="Change a price that has not started yet",
        request=PriceUpdateSerializer,
        responses=PriceSerializer,
        parameters=[ORG_HEADER_PARAMETER, PRICE_ID],
    ),
    destroy=extend_schema(
        summary="Withdraw a price that has not started yet", parameters=[ORG_HEADER_PARAMETER, PRICE_ID]
    ),
)
class PriceViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    tenant_model = Price
    serializer_class = PriceSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.VIEWER
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Price.objects.none()
        prices = Price.objects.filter(Q(organization__isnull=True) | Q(organization=self.tenant.organization))
        model = self.request.query_params.get("model")
        if model:
            prices = prices.filter(model=model[:100])
        return prices.order_by("model", "organization_id", "-effective_from")

    def _own(self, price: Price) -> Price:
        if price.organization_id is None:
            raise ForbiddenError("List prices are the platform's; add your organization's own price instead.")
        return price

    def create(self, request, *args, **kwargs):
        serializer = PriceWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        price = price_services.price_create(
            organization_id=self.tenant.organization.pk, actor_role=self.tenant.role, **serializer.validated_data
        )
        return Response(PriceSerializer(price).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        price = self._own(self.get_object())
        serializer = PriceUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        price = price_services.price_update(price=price, actor_role=self.tenant.role, **serializer.validated_data)
        return Response(PriceSerializer(price).data)

    def destroy(self, request, *args, **kwargs):
        price_services.price_delete(price=self._own(self.get_object()), actor_role=self.tenant.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BillingAccountApi(APIView):
    """Who invoices are addressed to, their currency, tax rate, terms and
    numbering."""

    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    @extend_schema(
        summary="The organization's billing account",
        parameters=[ORG_HEADER_PARAMETER],
        responses=BillingAccountSerializer,
    )
    def get(self, request):
        account = billing_account_for(organization_id=tenant_for_request(request).organization.pk)
        return Response(BillingAccountSerializer(account).data)

    @extend_schema(
        summary="Change the billing account",
        request=BillingAccountWriteSerializer,
        responses=BillingAccountSerializer,
        parameters=[ORG_HEADER_PARAMETER],
    )
    def patch(self, request):
        tenant = tenant_for_request(request)
        serializer = BillingAccountWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account = billing_account_update(
            organization=tenant.organization, actor_role=tenant.role, **serializer.validated_data
        )
        return Response(BillingAccountSerializer(account).data)
