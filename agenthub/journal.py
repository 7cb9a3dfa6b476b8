"""Write-behind: rows that must reach Postgres, written after the answer.

The OpenAI-compatible API's hot path records a conversation, its messages and
a usage-ledger row for every call.  Written one transaction at a time on the
request's path they cost more CPU than everything else the call does, and
they delay its first token.  Here they are appended to a Redis stream (one
``XADD``, awaited before the answer completes) and applied to the database in
batches by a drainer, with one transaction for many calls.

Nothing is lost when a process dies: an entry stays in the stream until it
has been applied and acknowledged.  Each web process drains the stream as a
member of one consumer group; an entry a dead consumer had taken is claimed
by another after ``JOURNAL_CLAIM_IDLE_SECONDS`` (and by Celery beat's
``journal_drain`` and ``manage.py journal_drain`` when no web process runs).
Appliers are idempotent (rows carry their ids), since an entry may be
applied twice when a consumer dies between writing and acknowledging.

Without Redis (the embedded demo), or while Redis is unreachable, an entry is
applied at once on the caller's path: slower, never lost.

Apps register an applier per kind in their ``AppConfig.ready``::

    journal.register("billing.usage", usage_rows_apply)   # (payloads: list[dict]) -> None, sync, idempotent
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis.exceptions
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, InterfaceError, OperationalError, transaction

from agenthub.db import db

logger = logging.getLogger(__name__)

STREAM = "journal"
DEAD_STREAM = "journal:dead"
GROUP = "writers"
BATCH = 500
BLOCK_MS = 1000
LINGER_SECONDS = 0.05

_appliers: dict[str, Callable[[list[dict]], None]] = {}
_consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
_drainers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}
_STORE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
_DATABASE_DOWN = (OperationalError, InterfaceError)


def register(kind: str, apply: Callable[[list[dict]], None]) -> None:
    """``apply(payloads)`` writes a batch of ``kind`` entries (sync, in the
    caller's transaction, idempotent)."""
    _appliers[kind] = apply


def enabled() -> bool:
    return bool(settings.REDIS_URL) and settings.WRITE_BEHIND


@dataclass(frozen=True)
class Entry:
    id: str
    kind: str
    payload: dict


def _encode(kind: str, payload: dict) -> dict:
    return {"k": kind, "p": json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))}


def _decode(entry_id, fields: dict) -> Entry | None:
    try:
        kind = fields[b"k"].decode()
        payload = json.loads(fields[b"p"])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None
    return Entry(entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id), kind, payload)


async def append(kind: str, payload: dict) -> None:
    """Records ``payload`` for the database: in the stream (then drained in
    batches), or at once when there is no stream to write to."""
    if kind not in _appliers:
        raise LookupError(f"no journal applier is registered for {kind!r}")
    if enabled():
        try:
            await _appender().add(_encode(kind, payload))
        except _STORE_ERRORS as exc:
            logger.warning("journal: Redis unreachable (%s); writing %s at once", exc.__class__.__name__, kind)
        else:
            if settings.JOURNAL_DRAIN_IN_WEB:
                _ensure_drainer()
            return
    failed = await db(apply_entries, [Entry("direct", kind, payload)])
    if failed:  # written nowhere: the caller must know (a turn reports persistence_error)
        raise JournalWriteError(f"the {kind} entry could not be written to the database")


class JournalWriteError(Exception):
    pass


class _Appender:
    """Group commit: the appends of one event-loop tick (concurrent calls
    finishing together) go to Redis in one pipeline."""

    def __init__(self):
        self.pending: list[tuple[dict, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def add(self, fields: dict) -> None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((fields, future))
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._flush(), name="journal-appender")
        await future

    async def _flush(self) -> None:
        from agenthub.redis import get_redis

        await asyncio.sleep(0)  # let this tick's other appends join
        while self.pending:
            batch, self.pending = self.pending, []
            try:
                async with get_redis().pipeline(transaction=False) as pipe:
                    for fields, _ in batch:
                        pipe.xadd(STREAM, fields)
                    await pipe.execute()
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)


_appenders: dict[asyncio.AbstractEventLoop, _Appender] = {}


def _appender() -> _Appender:
    loop = asyncio.get_running_loop()
    appender = _appenders.get(loop)
    if appender is None:
        for stale in [other for other in _appenders if other.is_closed()]:
            del _appenders[stale]
        appender = _appenders[loop] = _Appender()
    return appender


def apply_entries(entries: list[Entry]) -> list[Entry]:
    """Applies ``entries`` (sync): each kind's batch in one transaction; a
    batch that fails is retried entry by entry.  Returns the entries that
    could not be applied (they are kept aside, never dropped).  When the
    database cannot be reached it raises: the entries stay in the stream,
    unacknowledged, and are taken again later."""
    by_kind: dict[str, list[Entry]] = {}
    failed: list[Entry] = []
    for entry in entries:
        if entry.kind in _appliers:
            by_kind.setdefault(entry.kind, []).append(entry)
        else:
            logger.error("journal: no applier for %s (entry %s)", entry.kind, entry.id)
            failed.append(entry)
    for kind, batch in by_kind.items():
        apply = _appliers[kind]
        if len(batch) > 1:
            try:
                with transaction.atomic():
                    apply([e.payload for e in batch])
                continue
            except _DATABASE_DOWN:
                raise  # nothing is set aside while the database is unreachable: tried again later
            except Exception as exc:
                logger.warning(
                    "journal: a batch of %d %s entries failed (%s); applying them one by one",
                    len(batch),
                    kind,
                    exc.__class__.__name__,
                )
        for entry in batch:
            try:
                with transaction.atomic():
                    apply([entry.payload])
            except _DATABASE_DOWN:
                raise
            except IntegrityError as exc:
                # What it refers to is gone (an organization, agent or key
                # deleted meanwhile): kept aside with the reason.
                logger.warning("journal: %s entry %s refused by the database: %s", kind, entry.id, exc)
                failed.append(entry)
            except Exception:
                logger.exception("journal: could not apply %s entry %s", kind, entry.id)
                failed.append(entry)
    return failed


# --- draining in the web process ------------------------------------------------------------


def _ensure_drainer() -> None:
    loop = asyncio.get_running_loop()
    task = _drainers.get(loop)
    if task is None or task.done():
        for stale in [other for other in _drainers if other.is_closed()]:
            del _drainers[stale]
        _drainers[loop] = loop.create_task(_drain_forever(), name="journal-drainer")


async def _ensure_group(client) -> None:
    try:
        await client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except redis.exceptions.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _finish(client, entries: list[Entry], failed: list[Entry]) -> None:
    ids = [e.id for e in entries]
    async with client.pipeline(transaction=False) as pipe:
        for entry in failed:
            pipe.xadd(DEAD_STREAM, {**_encode(entry.kind, entry.payload), "from": entry.id})
        pipe.xack(STREAM, GROUP, *ids)
        pipe.xdel(STREAM, *ids)
        await pipe.execute()


async def drain_once(client, *, block_ms: int | None = None, claim: bool = False, idle_ms: int | None = None) -> int:
    """Takes up to BATCH entries (new ones, or with ``claim`` those another
    consumer has held longer than ``idle_ms``, by default
    JOURNAL_CLAIM_IDLE_SECONDS), applies and acknowledges them."""
    if claim:
        if idle_ms is None:
            idle_ms = int(settings.JOURNAL_CLAIM_IDLE_SECONDS * 1000)
        reply = await client.xautoclaim(STREAM, GROUP, _consumer, min_idle_time=idle_ms, start_id="0", count=BATCH)
        raw = reply[1]
    else:
        reply = await client.xreadgroup(GROUP, _consumer, {STREAM: ">"}, count=BATCH, block=block_ms)
        raw = reply[0][1] if reply else []
    entries = [e for entry_id, fields in raw if fields and (e := _decode(entry_id, fields)) is not None]
    bad = [entry_id for entry_id, fields in raw if not fields or _decode(entry_id, fields) is None]
    if bad:  # not written by this module (or truncated): nothing to apply
        logger.error("journal: dropping %d entries that cannot be read: %s", len(bad), bad[:10])
        await client.xack(STREAM, GROUP, *bad)
        await client.xdel(STREAM, *bad)
    if not entries:
        return 0
    failed = await db(apply_entries, entries)
    await _finish(client, entries, failed)
    return len(entries)


async def _drain_forever() -> None:
    from agenthub.redis import get_redis

    client = get_redis()
    next_claim = 0.0
    while True:
        try:
            await _ensure_group(client)
            while True:
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + settings.JOURNAL_CLAIM_IDLE_SECONDS
                    while await drain_once(client, claim=True) == BATCH:
                        pass
                if await drain_once(client, block_ms=BLOCK_MS) < BATCH:
                    # Let more gather: one transaction for many calls costs
                    # less than one for each.
                    await asyncio.sleep(LINGER_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("journal: the drainer failed; restarting in 1 s")
            await asyncio.sleep(1)


async def drain_all(*, claim_idle: bool = True, idle_ms: int | None = None) -> int:
    """Applies everything in the stream now (tests, shutdown, the command,
    beat): new entries, and with ``claim_idle`` those left by dead consumers
    (held longer than ``idle_ms``)."""
    if not enabled():
        return 0
    from agenthub.redis import get_redis

    client = get_redis()
    await _ensure_group(client)
    total = 0
    while (count := await drain_once(client, block_ms=None)) > 0:
        total += count
    if claim_idle:
        while (count := await drain_once(client, claim=True, idle_ms=idle_ms)) > 0:
            total += count
    return total


def drain_all_sync(*, claim_idle: bool = True) -> int:
    """:func:`drain_all` from sync code (Celery, management commands)."""
    return asyncio.run(_drain_all_kw(claim_idle))


async def _drain_all_kw(claim_idle: bool) -> int:
    try:
        return await drain_all(claim_idle=claim_idle)
    finally:
        from agenthub.redis import get_redis

        with contextlib.suppress(Exception):
            await get_redis().aclose()


async def backlog() -> dict:
    """Entries waiting in the stream and taken but not yet acknowledged."""
    from agenthub.redis import get_redis

    client = get_redis()
    length = await client.xlen(STREAM)
    pending = 0
    with contextlib.suppress(redis.exceptions.ResponseError):
        summary = await client.xpending(STREAM, GROUP)
        pending = summary["pending"] if isinstance(summary, dict) else 0
    dead = await client.xlen(DEAD_STREAM)
    return {"length": length, "pending": pending, "dead": dead}


def health() -> dict:
    """The informational ``/health/ready`` entry: what waits to be written."""
    if not enabled():
        return {"status": "off"}
    import redis as sync_redis

    client = sync_redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        length = client.xlen(STREAM)
        dead = client.xlen(DEAD_STREAM)
        pending = 0
        with contextlib.suppress(redis.exceptions.ResponseError):
            pending = client.xpending(STREAM, GROUP)["pending"]
    finally:
        client.close()
    return {"status": "ok" if not dead else "degraded", "waiting": length, "taken": pending, "kept_aside": dead}
