"""A GCRA rate limiter whose state lives in the database, so every process shares one budget.

The Generic Cell Rate Algorithm (GCRA, the "virtual scheduling" form of a leaky bucket) keeps a
single number per key: the *theoretical arrival time* ``tat`` of the next call. A limit of
``count`` calls per ``period`` spaces calls one *emission interval* ``T = period / count`` apart;
a burst allowance of ``b`` calls gives a *tolerance* ``tau = b * T``. A call arriving at ``t`` is
allowed when ``t >= tat - tau``, and moves ``tat`` to ``max(tat, t) + T``::

    tat (before)       allowed at = max(now, tat - tau)       tat (after) = max(tat, now) + T
    ----|------------------------|-----------------------------------|------------------> time
                                now

Used as a *scheduler* rather than a gate, the limiter does not say yes or no: it books the next
slot and answers *when* the call may run. With ``burst=0`` (the default) booked slots are at
least ``T`` apart, so the platform never sees more than ``count`` calls in any ``period``, and a
backlog uses the whole budget (slots are back to back).

One reservation on one key is one atomic statement on both databases::

    INSERT INTO rate_limit_state (key, tat, updated_at) VALUES (:key, :now + T, :now)
    ON CONFLICT (key) DO UPDATE SET tat = greatest(rate_limit_state.tat, :now) + T
        WHERE rate_limit_state.tat <= :now + :max_wait + tau
    RETURNING tat

(``max()`` instead of ``greatest()`` on SQLite). The conditional ``WHERE`` is what keeps a long
wait from wasting budget: a caller that will not wait that long (it re-schedules its job instead)
books nothing, and the slot stays free for a caller that can use it. The reserved row stays
locked until the caller's transaction ends, so callers commit promptly after reserving.

Several keys at once (a platform's whole budget plus a per-store limit): the call needs a slot on
*every* key at the *same* time, the latest of their next free slots. Booking each key at its own
earliest slot would be wrong (the call happens later than the early key believes, and that key
could then see two calls inside one interval), and booking the slow key's far slot on the fast key
would waste the fast key's budget when the caller then gives up. So a multi-key reservation locks
the keys' rows (``SELECT ... FOR UPDATE``, in key order so two callers cannot deadlock; SQLite's
``BEGIN IMMEDIATE`` already serialises writers), computes the common time, and books every key at
that time only if the wait is acceptable; otherwise it books nothing (on PostgreSQL all of that
is one statement, ``_RESERVE_MANY``, so the rows stay locked for one round trip and the commit,
not several: they are the hottest rows of the engine). The fast key's slots before
the common time stay usable by single-key callers only while its ``tat`` is behind; GCRA keeps no
holes, so an idle fast key loses the idle stretch, never budget it could have used under backlog.

The limiter never commits: the session, and its transaction, belong to the caller. Time comes from
the injected :class:`~menusync.core.clock.Clock`; ``tat`` is stored as seconds since the epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.core.resilience.models import RateLimitState

_TABLE: Table = RateLimitState.metadata.tables[RateLimitState.__tablename__]
_GUARD = 2e-6
"""Seconds added to every step of ``tat``. ``tat`` is a double of epoch seconds, whose resolution
is about 2.4e-7 s today: ``tat + 1.2`` can round to ``tat + 1.1999998``, and slots would then be a
hair *less* than one interval apart. The guard (2 ppm of the budget at one call a second) makes
booked slots, and the microsecond times they are answered as, never closer than the interval."""
_WAIT_SLACK = 1e-3
"""A wait may exceed ``max_wait`` by this much (the guard adds up over booked slots): a caller
willing to wait one interval is granted the slot one interval (and some microseconds) away."""
_MAX_ROUNDS = 5
"""Multi-key attempts; more than one only when two callers create the same new key at once."""
_UNBOUNDED = 1e12
"""``max_wait`` for callers that wait however long (seconds; about 30,000 years)."""

_RESERVE_MANY = text(
    """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:keys AS text[]), CAST(:steps AS float8[]), CAST(:taus AS float8[])
        ) AS i(key, step, tau)
    ),
    locked AS (
        SELECT s.key, s.tat FROM rate_limit_state AS s
        WHERE s.key = ANY(CAST(:keys AS text[]))
        ORDER BY s.key
        FOR UPDATE
    ),
    slot AS (
        SELECT greatest(CAST(:now AS float8), max(l.tat - i.tau)) AS at, count(*) AS found
        FROM input AS i JOIN locked AS l ON l.key = i.key
    ),
    booked AS (
        UPDATE rate_limit_state AS s
        SET tat = greatest(s.tat, slot.at) + i.step, updated_at = :updated_at
        FROM input AS i, slot
        WHERE s.key = i.key
          AND slot.found = cardinality(CAST(:keys AS text[]))
          AND slot.at - :now <= :max_wait
        RETURNING s.key
    )
    SELECT
        slot.at,
        slot.found,
        (SELECT count(*) FROM booked) AS booked,
        (SELECT l.key FROM locked AS l JOIN input AS i ON i.key = l.key
         ORDER BY l.tat - i.tau DESC, l.key LIMIT 1) AS limiting
    FROM slot
    """
)
"""Several keys in one statement (PostgreSQL): lock every key's row in key order, compute the
common time ``at`` (the latest next free slot), and book every key at ``at`` only when all rows
exist and the wait is acceptable. Answers ``at``, how many rows were found and booked, and the
key that decided ``at``."""

_CREATE_KEYS = text(
    """
    INSERT INTO rate_limit_state (key, tat, updated_at)
    SELECT key, CAST(:now AS float8), :updated_at FROM unnest(CAST(:keys AS text[])) AS key
    ON CONFLICT (key) DO NOTHING
    """
)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` calls per ``period_seconds``, plus an optional burst allowance.

    ``burst`` is the GCRA tolerance in calls: up to ``burst`` extra calls may run early after an
    idle stretch. Keep it 0 when the other side counts calls in fixed windows and must never see
    more than ``count`` in one.
    """

    count: int
    period_seconds: float
    burst: int = 0

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("a limit allows at least one call per period")
        if self.period_seconds <= 0:
            raise ValueError("a limit's period must be positive")
        if self.burst < 0:
            raise ValueError("a burst allowance cannot be negative")

    @property
    def interval(self) -> float:
        """The emission interval ``T``: seconds between two calls at the sustained rate."""
        return self.period_seconds / self.count

    @property
    def tolerance(self) -> float:
        """The GCRA tolerance ``tau`` in seconds."""
        return self.burst * self.interval


@dataclass(frozen=True)
class Reservation:
    """The limiter's answer: when the call may run, and whether its slot was booked.

    When ``is_granted`` the slot is booked (once the caller commits): sleep ``wait_seconds`` and
    call. Otherwise nothing was booked, because the wait exceeded the caller's ``max_wait``;
    ``allowed_at`` is then the earliest time a new reservation could be granted, a good time to
    re-schedule the work for.
    """

    is_granted: bool
    allowed_at: datetime
    wait_seconds: float
    limiting_key: str | None
    """The key whose next free slot decided ``allowed_at`` (None when no key made the call wait)."""


@dataclass(frozen=True)
class KeyUsage:
    """One key's state, for dashboards and the rate-limit endpoint.

    GCRA remembers no history, only how far ahead slots are booked, so ``used`` counts the calls
    of the window starting now (``period_seconds`` long) that are already booked, and
    ``remaining`` the ones still free; under a backlog ``used`` is the whole budget. Calls made
    before now are not counted.
    """

    key: str
    limit: Limit
    used: int
    remaining: int
    next_free_at: datetime
    """When a call reserved now would be allowed (now, when the key is free)."""
    booked_until: datetime | None
    """The key's theoretical arrival time; None when the key was never used."""
    updated_at: datetime | None


def _step(limit: Limit) -> float:
    """How far one booking moves ``tat``: the interval, plus the float-rounding guard."""
    return limit.interval + _GUARD


def _to_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _greatest(dialect: str, a: ColumnElement[float], b: float) -> ColumnElement[float]:
    if dialect == "sqlite":
        return func.max(a, b)  # SQLite's two-argument max() is scalar, like greatest()
    return func.greatest(a, b)


def _upsert(dialect: str) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` into ``rate_limit_state`` that knows its dialect's ``ON CONFLICT``."""
    if dialect == "postgresql":
        return postgresql.insert(_TABLE)
    if dialect == "sqlite":
        return sqlite.insert(_TABLE)
    raise NotImplementedError(f"the rate limiter supports PostgreSQL and SQLite, not {dialect}")


class RateLimiter:
    """GCRA reservations over ``rate_limit_state``, shared through the database.

    Keys are opaque strings chosen by the caller (for example one for a whole remote service and
    one per remote account); each call passes the :class:`Limit` that applies to each key, so
    limits can change without touching the stored state.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def reserve(
        self,
        session: AsyncSession,
        limits: Mapping[str, Limit],
        *,
        max_wait: float | None = None,
    ) -> Reservation:
        """Book the next slot on every key in ``limits``; answer when the call may run.

        With ``max_wait`` the slot is booked only when the call can run within ``max_wait``
        seconds; otherwise nothing is booked and the answer says when to come back. Without it
        the slot is booked however far ahead (several keys: unless other callers kept creating
        the same new keys under it, then nothing is booked and ``allowed_at`` is a retry time).
        One key is one atomic statement; several keys are booked together at their common time,
        or not at all (see the module docstring). The caller commits, and should do so at once,
        before sleeping: the keys' rows stay locked until then.
        """
        if not limits:
            raise ValueError("reserve needs at least one key")
        if max_wait is not None and max_wait < 0:
            raise ValueError("max_wait cannot be negative")
        dialect = session.get_bind().dialect.name
        now = self._clock.now().timestamp()
        if len(limits) == 1:
            [(key, limit)] = limits.items()
            return await self._reserve_one(session, dialect, key, limit, now, max_wait)
        if dialect == "postgresql":
            return await self._reserve_many_in_one_statement(session, limits, now, max_wait)
        return await self._reserve_many(session, dialect, limits, now, max_wait)

    async def penalize(
        self, session: AsyncSession, key: str, limit: Limit, seconds: float
    ) -> datetime:
        """Allow no call on ``key`` for ``seconds`` from now (the remote side answered 429).

        Slots already booked further ahead stay booked. Returns the key's next free slot.
        """
        dialect = session.get_bind().dialect.name
        now = self._clock.now()
        blocked_until = now.timestamp() + max(0.0, seconds) + limit.tolerance
        stmt = (
            _upsert(dialect)
            .values(key=key, tat=blocked_until, updated_at=now)
            .on_conflict_do_update(
                index_elements=[_TABLE.c.key],
                set_={
                    "tat": _greatest(dialect, _TABLE.c.tat, blocked_until),
                    "updated_at": now,
                },
            )
            .returning(_TABLE.c.tat)
        )
        tat = float((await session.execute(stmt)).scalar_one())
        return _to_datetime(max(now.timestamp(), tat - limit.tolerance))

    async def describe(self, session: AsyncSession, limits: Mapping[str, Limit]) -> list[KeyUsage]:
        """The usage of each key in ``limits``, in key order (unused keys show as free)."""
        now = self._clock.now().timestamp()
        rows = await self._read(session, sorted(limits))
        return [self._usage(key, limits[key], rows.get(key), now) for key in sorted(limits)]

    async def snapshot(
        self, session: AsyncSession, limit_for: Callable[[str], Limit | None]
    ) -> list[KeyUsage]:
        """The usage of every stored key whose limit ``limit_for`` knows, in key order."""
        now = self._clock.now().timestamp()
        result = await session.execute(
            select(_TABLE.c.key, _TABLE.c.tat, _TABLE.c.updated_at).order_by(_TABLE.c.key)
        )
        usages = []
        for key, tat, updated_at in result.all():
            limit = limit_for(key)
            if limit is not None:
                usages.append(self._usage(key, limit, (float(tat), updated_at), now))
        return usages

    async def _reserve_one(
        self,
        session: AsyncSession,
        dialect: str,
        key: str,
        limit: Limit,
        now: float,
        max_wait: float | None,
    ) -> Reservation:
        bound = None if max_wait is None else now + max_wait + _WAIT_SLACK + limit.tolerance
        tat = await self._book(session, dialect, key, limit, now, bound)
        if tat is not None:
            allowed = max(now, tat - _step(limit) - limit.tolerance)
            return self._answer(True, allowed, now, key if allowed > now else None)
        # Not booked: the wait was too long. Read the key's next free slot as the hint.
        stored = await self._read(session, [key])
        current = stored[key][0] if key in stored else now
        allowed = max(now, current - limit.tolerance)
        return self._answer(False, allowed, now, key)

    async def _reserve_many(
        self,
        session: AsyncSession,
        dialect: str,
        limits: Mapping[str, Limit],
        now: float,
        max_wait: float | None,
    ) -> Reservation:
        keys = sorted(limits)
        at, limiting = now, None
        for _ in range(_MAX_ROUNDS):
            stored = await self._read(session, keys, lock=True)
            at, limiting = now, None
            for key in keys:
                if key in stored:
                    free_at = stored[key][0] - limits[key].tolerance
                    if free_at > at:
                        at, limiting = free_at, key
            if max_wait is not None and at - now > max_wait + _WAIT_SLACK:
                return self._answer(False, at, now, limiting)
            # Book every key at the common time ``at``. Existing rows are locked, so each
            # conditional upsert succeeds; it can refuse only when another caller created a new
            # key between our read and our insert, and then nothing of this round is kept.
            savepoint = await session.begin_nested()
            for key in keys:
                limit = limits[key]
                if await self._book(session, dialect, key, limit, at, at + limit.tolerance) is None:
                    await savepoint.rollback()
                    break
            else:
                await savepoint.commit()
                return self._answer(True, at, now, limiting)
        return self._answer(False, at, now, limiting)

    async def _reserve_many_in_one_statement(
        self,
        session: AsyncSession,
        limits: Mapping[str, Limit],
        now: float,
        max_wait: float | None,
    ) -> Reservation:
        """``_reserve_many`` as one statement (PostgreSQL): lock, decide and book in one round
        trip, so the keys' rows stay locked only until the caller's commit, not across several
        round trips of a client that may be descheduled meanwhile."""
        keys = sorted(limits)
        params = {
            "keys": keys,
            "steps": [_step(limits[key]) for key in keys],
            "taus": [limits[key].tolerance for key in keys],
            "now": now,
            "max_wait": _UNBOUNDED if max_wait is None else max_wait + _WAIT_SLACK,
            "updated_at": self._clock.now(),
        }
        row = (await session.execute(_RESERVE_MANY, params)).one()
        if row.found < len(keys):
            # A key used for the first time: create it (free now), then book.
            await session.execute(_CREATE_KEYS, params)
            row = (await session.execute(_RESERVE_MANY, params)).one()
        at = float(row.at)
        limiting = row.limiting if at > now else None
        return self._answer(row.booked == len(keys), at, now, limiting)

    async def _book(
        self,
        session: AsyncSession,
        dialect: str,
        key: str,
        limit: Limit,
        at: float,
        bound: float | None,
    ) -> float | None:
        """The one-statement GCRA step at time ``at``: new ``tat``, or None when refused."""
        now = self._clock.now()
        stmt = (
            _upsert(dialect)
            .values(key=key, tat=at + _step(limit), updated_at=now)
            .on_conflict_do_update(
                index_elements=[_TABLE.c.key],
                set_={
                    "tat": _greatest(dialect, _TABLE.c.tat, at) + _step(limit),
                    "updated_at": now,
                },
                where=None if bound is None else _TABLE.c.tat <= bound,
            )
            .returning(_TABLE.c.tat)
        )
        tat = (await session.execute(stmt)).scalar_one_or_none()
        return None if tat is None else float(tat)

    async def _read(
        self, session: AsyncSession, keys: Iterable[str], *, lock: bool = False
    ) -> dict[str, tuple[float, datetime]]:
        stmt = (
            select(_TABLE.c.key, _TABLE.c.tat, _TABLE.c.updated_at)
            .where(_TABLE.c.key.in_(list(keys)))
            .order_by(_TABLE.c.key)
        )
        if lock:
            stmt = stmt.with_for_update()
        result = await session.execute(stmt)
        return {key: (float(tat), updated_at) for key, tat, updated_at in result.all()}

    def _answer(
        self, is_granted: bool, allowed: float, now: float, limiting: str | None
    ) -> Reservation:
        return Reservation(
            is_granted=is_granted,
            allowed_at=_to_datetime(allowed),
            wait_seconds=max(0.0, allowed - now),
            limiting_key=limiting,
        )

    def _usage(
        self, key: str, limit: Limit, stored: tuple[float, datetime] | None, now: float
    ) -> KeyUsage:
        if stored is None:
            return KeyUsage(key, limit, 0, limit.count, _to_datetime(now), None, None)
        tat, updated_at = stored
        ahead = max(0.0, tat - now)
        # Booked calls that start now or later; the epsilon absorbs float noise in ``tat``.
        used = min(limit.count, math.floor(ahead / _step(limit) + 1e-6))
        return KeyUsage(
            key=key,
            limit=limit,
            used=used,
            remaining=limit.count - used,
            next_free_at=_to_datetime(max(now, tat - limit.tolerance)),
            booked_until=_to_datetime(tat),
            updated_at=updated_at,
        )
