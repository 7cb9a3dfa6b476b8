"""The deployments that serve each model name, and the order to try them in.

Deployments and routes live in the database (``integrations.models``, edited
in the admin).  Each process keeps a snapshot and reloads it when this
process changed them (signals) or ``MODEL_ROUTES_REFRESH_SECONDS`` after the
last load (changes made by another process).  A model name without
deployments is served by the *default* deployment: the server configured by
``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` and the ``LLM_*`` settings.
"""

import asyncio
import random
import time
from dataclasses import dataclass, field

from django.conf import settings

from agenthub.db import db
from integrations.llm.breaker import Cap, Limits, Stats, weighted_order

DEFAULT_KEY = "default"


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    base_url: str
    api_key: str
    timeout: float
    connect_timeout: float

    def __repr__(self) -> str:  # never shows the API key
        return f"ProviderConfig(name={self.name!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class Deployment:
    key: str  # the breaker key: the deployment's id, or "default:<model>"
    label: str  # "model → provider/upstream", for logs, metrics and health
    model_name: str
    upstream_model: str
    provider: ProviderConfig
    weight: int = 1
    priority: int = 0
    threshold: int | None = None
    cooldown_seconds: int | None = None
    max_in_flight: int = 0  # 0: no cap
    rpm_limit: int = 0
    tpm_limit: int = 0

    def cap(self) -> Cap:
        return Cap(self.max_in_flight, self.rpm_limit, self.tpm_limit)

    def limits(self) -> Limits:
        return Limits(
            threshold=self.threshold or settings.CIRCUIT_BREAKER_THRESHOLD,
            window_ms=settings.CIRCUIT_BREAKER_WINDOW_SECS * 1000,
            cooldown_ms=(self.cooldown_seconds or settings.CIRCUIT_BREAKER_TIMEOUT_SECS) * 1000,
        )


@dataclass(frozen=True)
class Route:
    model_name: str
    strategy: str
    deployments: tuple[Deployment, ...]


def default_deployment(model_name: str) -> Deployment:
    provider = ProviderConfig(
        name="openai",
        base_url=settings.OPENAI_BASE_URL,
        api_key=settings.OPENAI_API_KEY,
        timeout=settings.LLM_TIMEOUT_SECONDS,
        connect_timeout=settings.LLM_CONNECT_TIMEOUT_SECONDS,
    )
    return Deployment(
        key=f"{DEFAULT_KEY}:{model_name}",
        label=f"{model_name} → default (OPENAI_BASE_URL)",
        model_name=model_name,
        upstream_model=model_name,
        provider=provider,
    )


def load_routes() -> dict[str, Route]:
    """Every enabled deployment of an enabled provider, by model name."""
    from integrations.models import ModelDeployment, ModelRoute

    strategies = dict(ModelRoute.objects.values_list("model_name", "strategy"))
    by_model: dict[str, list[Deployment]] = {}
    rows = ModelDeployment.objects.filter(enabled=True, provider__enabled=True).select_related("provider")
    for row in rows:
        provider = ProviderConfig(
            name=row.provider.name,
            base_url=row.provider.base_url,
            api_key=row.provider.api_key(),
            timeout=row.provider.timeout_seconds,
            connect_timeout=row.provider.connect_timeout_seconds,
        )
        upstream = row.upstream_model or row.model_name
        by_model.setdefault(row.model_name, []).append(
            Deployment(
                key=str(row.id),
                label=f"{row.model_name} → {row.provider.name}/{upstream}",
                model_name=row.model_name,
                upstream_model=upstream,
                provider=provider,
                weight=row.weight,
                priority=row.priority,
                threshold=row.breaker_threshold,
                cooldown_seconds=row.breaker_timeout_seconds,
                max_in_flight=row.max_in_flight or 0,
                rpm_limit=row.rpm_limit or 0,
                tpm_limit=row.tpm_limit or 0,
            )
        )
    return {
        name: Route(name, strategies.get(name, "weighted"), tuple(deployments))
        for name, deployments in by_model.items()
    }


@dataclass
class RouteTable:
    """This process's snapshot of the routes, and what the breakers last
    said of each deployment (for least-busy and lowest-latency routing)."""

    rng: random.Random = field(default_factory=random.Random)
    _routes: dict[str, Route] | None = None
    _loaded_at: float = 0.0
    _lock: asyncio.Lock | None = None
    stats: dict[str, Stats] = field(default_factory=dict)

    def invalidate(self) -> None:
        self._routes = None

    def _fresh(self) -> bool:
        return self._routes is not None and time.monotonic() - self._loaded_at < settings.MODEL_ROUTES_REFRESH_SECONDS

    async def routes(self) -> dict[str, Route]:
        if not self._fresh():
            # Through agenthub.db: its threads return their connection to the
            # pool after each call (a request's own sync thread would keep one).
            routes = await db(load_routes)
            self._routes, self._loaded_at = routes, time.monotonic()
        return self._routes

    def routes_sync(self) -> dict[str, Route]:
        if not self._fresh():
            self._routes, self._loaded_at = load_routes(), time.monotonic()
        return self._routes

    async def route(self, model_name: str) -> Route:
        route = (await self.routes()).get(model_name)
        return route or Route(model_name, "weighted", (default_deployment(model_name),))

    def order(self, route: Route, tried: set[str] = frozenset()) -> list[Deployment]:
        """The deployments to offer the breakers, best first: by priority,
        then by the route's strategy; known-open circuits and deployments
        already tried in this call go last."""
        ordered: list[Deployment] = []
        for priority in sorted({d.priority for d in route.deployments}):
            group = [d for d in route.deployments if d.priority == priority]
            if route.strategy == "least_busy":
                group.sort(key=lambda d: (self._stats(d).in_flight, self.rng.random()))
            elif route.strategy == "lowest_latency":
                # Unmeasured deployments first, so each gets measured.
                group.sort(key=lambda d: (self._stats(d).ttft_ms or 0.0, self.rng.random()))
            else:
                group = weighted_order(group, [d.weight for d in group], self.rng)
            ordered.extend(group)
        return sorted(ordered, key=lambda d: (d.key in tried, self._stats(d).state == 1))

    def _stats(self, deployment: Deployment) -> Stats:
        return self.stats.get(deployment.key) or Stats()

    def remember(self, deployments: list[Deployment], stats: list[Stats]) -> None:
        for deployment, entry in zip(deployments, stats, strict=False):
            self.stats[deployment.key] = entry


routes = RouteTable()


def _invalidate(**kwargs) -> None:
    routes.invalidate()


def connect_signals() -> None:
    from django.db.models.signals import post_delete, post_save

    from integrations.models import ModelDeployment, ModelProvider, ModelRoute

    for model in (ModelProvider, ModelDeployment, ModelRoute):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"routes-{model.__name__}-save")
        post_delete.connect(_invalidate, sender=model, dispatch_uid=f"routes-{model.__name__}-delete")
