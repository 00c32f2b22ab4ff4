"""Circuit breakers whose state lives in the database, so every process sees the same breaker.

A breaker stops calling a remote side that keeps failing, and lets a trickle of *probe* calls find
out when it has recovered::

               failure_threshold counted failures in a row
      +--------+ ------------------------------------------> +------+
      | closed |                                             | open | <--------------+
      +--------+                                             +------+                |
        ^    ^                                                   |                   |
        |    | reset (an administrator, from any state)          | open_seconds      |
        |    +---------------------------------------            | pass; one caller  |
        |                                                        | claims the probe  |
        |                                                        v                   |
        |     success_threshold probe successes            +-----------+  the probe  |
        +------------------------------------------------- | half_open | ------------+
                                                           +-----------+   fails
                                                  one probe at a time; others wait

* **closed**: every call is allowed. Counted failures in a row are tallied; a success resets the
  tally. ``failure_threshold`` in a row open the breaker.
* **open**: every call is rejected until ``opened_until``; the caller defers its work to then.
* **half_open**: exactly one probe call at a time is allowed. A probe success frees the probe slot
  for the next probe; ``success_threshold`` of them close the breaker. A probe failure re-opens
  it for another ``open_seconds``. A probe whose owner never reports (it crashed) is reclaimable
  after ``probe_timeout_seconds``.

The probe is claimed with one conditional ``UPDATE`` (``... WHERE state = 'open' AND opened_until
<= :now``, or ``state = 'half_open'`` with no live probe); the database decides the race, so among
any number of processes exactly one gets it. Outcomes are recorded under a row lock (``SELECT ...
FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), so concurrent reports
count exactly.

The caller decides which failures count: only those that say the remote side is unhealthy
(5xx, timeouts, connection errors). Answers that reject our request (4xx), our own rate-limit waits
and this breaker's rejections are not failures of the remote side.

Nothing here commits: the session and its transaction belong to the caller, who commits promptly
(a claimed probe and a recorded outcome hold the breaker's row lock until then). Every method that
changes the state returns the new state, so the caller can record the change in the same
transaction. Rows are created on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Result, Row, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.core.resilience.models import CircuitBreakerState

_TABLE: Table = CircuitBreakerState.metadata.tables[CircuitBreakerState.__tablename__]
_ERROR_LIMIT = 2000
"""Characters of ``last_error`` kept."""


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class PermitKind(StrEnum):
    ALLOWED = "allowed"
    """The breaker is closed: call."""
    PROBE = "probe"
    """The breaker is half-open and this caller holds its one probe: call, then report."""
    REJECTED = "rejected"
    """Do not call; try again at ``retry_at``."""


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens, how long it stays open, and how it closes again."""

    failure_threshold: int = 5
    """Consecutive counted failures that open a closed breaker."""
    open_seconds: float = 60.0
    """How long an opened breaker rejects every call before admitting a probe."""
    success_threshold: int = 3
    """Probe successes that close a half-open breaker."""
    probe_timeout_seconds: float = 120.0
    """After this long without a report, a probe is presumed lost and another caller may claim
    it. Keep it above the longest call a probe can make."""
    probe_retry_seconds: float = 5.0
    """How long a caller that found the probe taken waits before asking again (never past the
    time the probe becomes reclaimable)."""

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.success_threshold < 1:
            raise ValueError("breaker thresholds must be at least 1")
        if min(self.open_seconds, self.probe_timeout_seconds, self.probe_retry_seconds) <= 0:
            raise ValueError("breaker durations must be positive")


@dataclass(frozen=True)
class Permit:
    """The answer to :meth:`CircuitBreaker.acquire`."""

    kind: PermitKind
    state: BreakerState
    """The breaker's state as this caller left it."""
    retry_at: datetime | None = None
    """For a rejection: when to ask again (when the breaker may admit a probe)."""
    changed_to: BreakerState | None = None
    """The new state when acquiring changed it (open -> half_open), else None."""

    @property
    def is_allowed(self) -> bool:
        return self.kind is not PermitKind.REJECTED

    @property
    def is_probe(self) -> bool:
        return self.kind is PermitKind.PROBE


@dataclass(frozen=True)
class BreakerStatus:
    """One breaker's stored state and counters (a never-used breaker is closed and zero)."""

    name: str
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    probe_successes: int = 0
    total_failures: int = 0
    total_successes: int = 0
    opened_at: datetime | None = None
    opened_until: datetime | None = None
    """While open: when the breaker may admit a probe (half-open)."""
    probe_owner: str | None = None
    probe_started_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None
    updated_at: datetime | None = None


@dataclass
class _Changes:
    values: dict[str, Any] = field(default_factory=dict)
    new_state: BreakerState | None = None


def _status(row: Row[Any]) -> BreakerStatus:
    return BreakerStatus(
        name=row.name,
        state=BreakerState(row.state),
        consecutive_failures=row.consecutive_failures,
        probe_successes=row.probe_successes,
        total_failures=row.total_failures,
        total_successes=row.total_successes,
        opened_at=row.opened_at,
        opened_until=row.opened_until,
        probe_owner=row.probe_owner,
        probe_started_at=row.probe_started_at,
        last_failure_at=row.last_failure_at,
        last_error=row.last_error,
        updated_at=row.updated_at,
    )


def _claimed(result: Result[Any]) -> bool:
    """Whether a claiming ``UPDATE`` changed the row: the database's verdict on the race."""
    return cast("CursorResult[Any]", result).rowcount == 1


class CircuitBreaker:
    """Named breakers over ``circuit_breakers``, one policy per name (or a shared default)."""

    def __init__(
        self,
        clock: Clock,
        policy: BreakerPolicy | None = None,
        *,
        policies: Mapping[str, BreakerPolicy] | None = None,
    ) -> None:
        self._clock = clock
        self._default = policy or BreakerPolicy()
        self._policies = dict(policies or {})

    def policy_for(self, name: str) -> BreakerPolicy:
        return self._policies.get(name, self._default)

    async def acquire(self, session: AsyncSession, name: str, owner: str) -> Permit:
        """Ask to make one call through breaker ``name`` on behalf of ``owner``.

        Closed: allowed. Open with its time passed, or half-open with no live probe: ``owner``
        atomically claims the probe (exactly one caller wins) and gets a ``PROBE`` permit, after
        which it must report with :meth:`record_success`, :meth:`record_failure` or
        :meth:`release`. Otherwise rejected, with ``retry_at`` the time to ask again; a rejection
        is not a failure of anything and should not consume an attempt. Asking again while
        holding the probe returns the probe again.
        """
        policy = self.policy_for(name)
        now = self._clock.now()
        stale_before = now - timedelta(seconds=policy.probe_timeout_seconds)
        for _ in range(3):
            status = await self._read(session, name)
            if status.state is BreakerState.CLOSED:
                return Permit(PermitKind.ALLOWED, BreakerState.CLOSED)
            if status.state is BreakerState.OPEN:
                assert status.opened_until is not None  # an open breaker always has its end
                if status.opened_until > now:
                    return Permit(
                        PermitKind.REJECTED, BreakerState.OPEN, retry_at=status.opened_until
                    )
                if await self._claim_from_open(session, name, owner, now):
                    return Permit(
                        PermitKind.PROBE,
                        BreakerState.HALF_OPEN,
                        changed_to=BreakerState.HALF_OPEN,
                    )
            else:
                probe_is_live = (
                    status.probe_owner is not None
                    and status.probe_owner != owner
                    and status.probe_started_at is not None
                    and status.probe_started_at >= stale_before
                )
                if probe_is_live:
                    assert status.probe_started_at is not None
                    return Permit(
                        PermitKind.REJECTED,
                        BreakerState.HALF_OPEN,
                        retry_at=min(
                            now + timedelta(seconds=policy.probe_retry_seconds),
                            status.probe_started_at
                            + timedelta(seconds=policy.probe_timeout_seconds),
                        ),
                    )
                if await self._claim_in_half_open(session, name, owner, now, stale_before):
                    return Permit(PermitKind.PROBE, BreakerState.HALF_OPEN)
            # Another caller changed the row between our read and our claim: look again.
        return Permit(
            PermitKind.REJECTED,
            status.state,
            retry_at=now + timedelta(seconds=policy.probe_retry_seconds),
        )

    async def record_success(
        self, session: AsyncSession, name: str, owner: str
    ) -> BreakerState | None:
        """A call through ``name`` succeeded. Returns the new state if this changed it.

        Closed: the consecutive-failure tally starts over. Half-open and ``owner`` holds the
        probe: one more probe success, closing the breaker at ``success_threshold``; the probe
        slot is freed for the next probe. Late successes from calls made before the breaker
        opened only add to the totals.
        """
        policy = self.policy_for(name)
        now = self._clock.now()
        current = await self._read(session, name)
        if current.state is BreakerState.CLOSED and current.consecutive_failures == 0:
            # The common case: nothing to reset. Writing here would make every successful call
            # of every worker queue on this one row; totals of successes are not kept for that
            # reason (sync history has them).
            return None
        status = await self._lock(session, name)
        changes = _Changes({"total_successes": status.total_successes + 1, "updated_at": now})
        if status.state is BreakerState.CLOSED:
            changes.values["consecutive_failures"] = 0
        elif status.state is BreakerState.HALF_OPEN and status.probe_owner == owner:
            successes = status.probe_successes + 1
            if successes >= policy.success_threshold:
                self._close(changes)
            else:
                changes.values |= {
                    "probe_successes": successes,
                    "probe_owner": None,
                    "probe_started_at": None,
                }
        await self._write(session, name, changes)
        return changes.new_state

    async def record_failure(
        self, session: AsyncSession, name: str, owner: str, error: str
    ) -> BreakerState | None:
        """A call through ``name`` failed in a way that counts. Returns the new state if changed.

        Call it only for failures that say the remote side is unhealthy. Closed: the tally grows
        and opens the breaker at ``failure_threshold``. Half-open and ``owner`` holds the probe:
        the breaker re-opens for ``open_seconds``. Other failures (late reports from calls made
        before the breaker opened, a probe owner whose probe was reclaimed) only add to the
        totals and ``last_error``.
        """
        policy = self.policy_for(name)
        now = self._clock.now()
        status = await self._lock(session, name)
        changes = _Changes(
            {
                "consecutive_failures": status.consecutive_failures + 1,
                "total_failures": status.total_failures + 1,
                "last_failure_at": now,
                "last_error": error[:_ERROR_LIMIT],
                "updated_at": now,
            }
        )
        opens = (
            status.state is BreakerState.CLOSED
            and status.consecutive_failures + 1 >= policy.failure_threshold
        ) or (status.state is BreakerState.HALF_OPEN and status.probe_owner == owner)
        if opens:
            changes.new_state = BreakerState.OPEN
            changes.values |= {
                "state": BreakerState.OPEN.value,
                "opened_at": now,
                "opened_until": now + timedelta(seconds=policy.open_seconds),
                "probe_owner": None,
                "probe_started_at": None,
                "probe_successes": 0,
            }
        await self._write(session, name, changes)
        return changes.new_state

    async def release(self, session: AsyncSession, name: str, owner: str) -> None:
        """Give back a probe that made no call (for example the caller had to wait for its rate
        limit), so another caller can probe at once instead of after the probe timeout."""
        await session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.name == name,
                _TABLE.c.state == BreakerState.HALF_OPEN.value,
                _TABLE.c.probe_owner == owner,
            )
            .values(probe_owner=None, probe_started_at=None, updated_at=self._clock.now())
        )

    async def reset(self, session: AsyncSession, name: str) -> BreakerState | None:
        """Force breaker ``name`` closed (an administrator's decision); totals are kept.

        Returns ``closed`` when the breaker was not closed, None when nothing changed.
        """
        status = await self._lock(session, name)
        changes = _Changes({"updated_at": self._clock.now()})
        self._close(changes)
        if status.state is BreakerState.CLOSED:
            changes.new_state = None
        await self._write(session, name, changes)
        return changes.new_state

    async def get_state(self, session: AsyncSession, name: str) -> BreakerStatus:
        """Breaker ``name`` as stored (a never-used breaker reads as closed)."""
        return await self._read(session, name)

    async def list_states(
        self, session: AsyncSession, names: Iterable[str] | None = None
    ) -> list[BreakerStatus]:
        """Every stored breaker, or the given ones (never-used ones read as closed), by name."""
        stmt = select(_TABLE).order_by(_TABLE.c.name)
        if names is None:
            return [_status(row) for row in (await session.execute(stmt)).all()]
        wanted = sorted(set(names))
        stored = {
            row.name: _status(row)
            for row in (await session.execute(stmt.where(_TABLE.c.name.in_(wanted)))).all()
        }
        return [stored.get(name, BreakerStatus(name)) for name in wanted]

    @staticmethod
    def _close(changes: _Changes) -> None:
        changes.new_state = BreakerState.CLOSED
        changes.values |= {
            "state": BreakerState.CLOSED.value,
            "consecutive_failures": 0,
            "probe_successes": 0,
            "opened_at": None,
            "opened_until": None,
            "probe_owner": None,
            "probe_started_at": None,
        }

    async def _claim_from_open(
        self, session: AsyncSession, name: str, owner: str, now: datetime
    ) -> bool:
        result = await session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.name == name,
                _TABLE.c.state == BreakerState.OPEN.value,
                _TABLE.c.opened_until <= now,
            )
            .values(
                state=BreakerState.HALF_OPEN.value,
                probe_owner=owner,
                probe_started_at=now,
                probe_successes=0,
                updated_at=now,
            )
        )
        return _claimed(result)

    async def _claim_in_half_open(
        self,
        session: AsyncSession,
        name: str,
        owner: str,
        now: datetime,
        stale_before: datetime,
    ) -> bool:
        result = await session.execute(
            update(_TABLE)
            .where(
                _TABLE.c.name == name,
                _TABLE.c.state == BreakerState.HALF_OPEN.value,
                (_TABLE.c.probe_owner.is_(None))
                | (_TABLE.c.probe_owner == owner)
                | (_TABLE.c.probe_started_at < stale_before),
            )
            .values(probe_owner=owner, probe_started_at=now, updated_at=now)
        )
        return _claimed(result)

    async def _read(self, session: AsyncSession, name: str) -> BreakerStatus:
        row = (await session.execute(select(_TABLE).where(_TABLE.c.name == name))).one_or_none()
        return BreakerStatus(name) if row is None else _status(row)

    async def _lock(self, session: AsyncSession, name: str) -> BreakerStatus:
        """The breaker's row, created if missing, locked until the caller's transaction ends."""
        stmt = select(_TABLE).where(_TABLE.c.name == name).with_for_update()
        row = (await session.execute(stmt)).one_or_none()
        if row is None:
            dialect = session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            await session.execute(
                insert(_TABLE)
                .values(
                    name=name,
                    state=BreakerState.CLOSED.value,
                    consecutive_failures=0,
                    probe_successes=0,
                    total_failures=0,
                    total_successes=0,
                    updated_at=self._clock.now(),
                )
                .on_conflict_do_nothing(index_elements=[_TABLE.c.name])
            )
            row = (await session.execute(stmt)).one()
        return _status(row)

    async def _write(self, session: AsyncSession, name: str, changes: _Changes) -> None:
        await session.execute(update(_TABLE).where(_TABLE.c.name == name).values(changes.values))
