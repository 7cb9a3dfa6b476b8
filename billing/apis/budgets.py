"""Budgets and their threshold alerts.

Admins and owners write and see every budget; members see the budgets that
apply to them (the organization's and their own); alerts are for admins."""

from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.apis import ORG_HEADER_PARAMETER
from accounts.permissions import HasOrganizationRole
from accounts.roles import Role, role_at_least
from accounts.tenancy import TenantScopedMixin
from billing.models import Budget, BudgetAlert, BudgetScope
from billing.serializers import (
    BudgetAlertSerializer,
    BudgetSerializer,
    BudgetUpdateSerializer,
    BudgetWriteSerializer,
)
from billing.services import budgets as budget_services

BUDGET_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The budget's id.")
ALERT_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The alert's id.")


@extend_schema_view(
    list=extend_schema(summary="Budgets, with what each has spent this period", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One budget", parameters=[ORG_HEADER_PARAMETER, BUDGET_ID]),
    create=extend_schema(
        summary="A new budget (counts from now)",
        request=BudgetWriteSerializer,
        responses={201: BudgetSerializer},
        parameters=[ORG_HEADER_PARAMETER],
    ),
    partial_update=extend_schema(
        summary="Change a budget's name, limit, period, action, thresholds or whether it is on",
        request=BudgetUpdateSerializer,
        responses=BudgetSerializer,
        parameters=[ORG_HEADER_PARAMETER, BUDGET_ID],
    ),
    destroy=extend_schema(summary="Remove a budget", parameters=[ORG_HEADER_PARAMETER, BUDGET_ID]),
)
class BudgetViewSet(
    TenantScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    tenant_model = Budget
    serializer_class = BudgetSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.MEMBER
    write_role = Role.ADMIN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Budget.objects.none()
        tenant = self.tenant
        budgets = Budget.objects.for_organization(tenant.organization).order_by("name", "created_at")
        if role_at_least(tenant.role, Role.ADMIN):
            return budgets
        mine = Q(scope_kind=BudgetScope.ORGANIZATION)
        if tenant.api_key is not None:
            mine |= Q(scope_kind=BudgetScope.API_KEY, scope_id=str(tenant.api_key.pk))
        elif tenant.user is not None:
            mine |= Q(scope_kind=BudgetScope.USER, scope_id=str(tenant.user.pk))
        return budgets.filter(mine)

    def create(self, request, *args, **kwargs):
        serializer = BudgetWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        budget = budget_services.budget_create(
            organization=self.tenant.organization, actor_role=self.tenant.role, **serializer.validated_data
        )
        return Response(BudgetSerializer(budget).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        budget = self.get_object()
        serializer = BudgetUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        budget = budget_services.budget_update(budget=budget, actor_role=self.tenant.role, **serializer.validated_data)
        return Response(BudgetSerializer(budget).data)

    def destroy(self, request, *args, **kwargs):
        budget_services.budget_delete(budget=self.get_object(), actor_role=self.tenant.role)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Budget thresholds crossed, newest first", parameters=[ORG_HEADER_PARAMETER]),
    retrieve=extend_schema(summary="One alert", parameters=[ORG_HEADER_PARAMETER, ALERT_ID]),
)
class BudgetAlertViewSet(TenantScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    tenant_model = BudgetAlert
    serializer_class = BudgetAlertSerializer
    permission_classes = [IsAuthenticated, HasOrganizationRole]
    read_role = Role.ADMIN
    write_role = Role.ADMIN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BudgetAlert.objects.none()
        return BudgetAlert.objects.for_organization(self.tenant.organization).select_related("budget")

    @extend_schema(
        summary="Mark an alert as seen",
        request=None,
        responses=BudgetAlertSerializer,
        parameters=[ORG_HEADER_PARAMETER, ALERT_ID],
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request, pk=None):
        alert = budget_services.budget_alert_acknowledge(alert=self.get_object(), actor_role=self.tenant.role)
        return Response(BudgetAlertSerializer(alert).data)
