"""The daily rollup of sync jobs: per company, platform and UTC day, the outcomes of the jobs
created that day, so that analytics over a quarter and the history's total read a few hundred rows
instead of every job. The rollup starts at the oldest job's day (jobs are never deleted).

Three writers, one rule: a ``sync_daily_stats`` row is trusted only when ``is_final``.

* **Rolling a day** (maintenance tick): once a day has been over for ``SETTLE``, one statement
  counts that day's jobs of every company (``ix_sync_jobs_created``) into the table and moves
  ``sync_rollup_progress.through_day`` past it, under the progress row's lock, so one worker rolls
  each day. A (company, platform) with a job still running that day is written not final.
  ``ON CONFLICT DO NOTHING``: a row already there was written by a re-queue and stays not final.
* **Re-queueing** a finished job (the retry endpoint; finished jobs change nowhere else) marks its
  day's row not final and bumps its ``version``, in the same transaction.
* **Recounting** (maintenance tick) a not-final day of a company: lock the day's rows, count the
  day's jobs again, and write each row only if its ``version`` is still the one locked. A re-queue
  that commits after the count waits for that lock and then marks the row again; one that
  committed before it is in the count.

Readers (``count_outcomes`` for analytics, ``count_created`` for the history's total) take whole
days from here only when every row of the day for the company is final, and count everything else
(the window's edges, days not rolled yet, reopened days) from the jobs themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, Table, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from menusync.core.clock import Clock
from menusync.sync.models import DailySyncStats, RollupProgress, SyncJob

PROGRESS = "sync_jobs"
FINISHED = ("completed", "failed", "cancelled")
SETTLE = timedelta(hours=1)
"""A day is rolled this long after it ended: no job created that day is still uncommitted."""
ONE_DAY = timedelta(days=1)
RECOUNT_AFTER = timedelta(minutes=5)
"""A not-final day is counted again at most this often (a job can stay busy for a while)."""

_STATS: Table = DailySyncStats.metadata.tables[DailySyncStats.__tablename__]
_PROGRESS: Table = RollupProgress.metadata.tables[RollupProgress.__tablename__]
COUNTED = ("total", "completed", "failed", "cancelled", "with_duration", "duration_sum")


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _insert(session: AsyncSession, table: Table = _STATS) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` that knows its dialect's ``ON CONFLICT``."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def outcome_columns() -> tuple[ColumnElement[Any], ...]:
    """The ``COUNTED`` aggregates over ``SyncJob`` rows, in order and labelled (``StatusCounts.of``
    reads them back)."""
    completed = SyncJob.status == "completed"
    return (
        func.count().label("total"),
        func.count().filter(completed).label("completed"),
        func.count().filter(SyncJob.status == "failed").label("failed"),
        func.count().filter(SyncJob.status == "cancelled").label("cancelled"),
        func.count(SyncJob.duration_ms).filter(completed).label("with_duration"),
        func.coalesce(func.sum(SyncJob.duration_ms).filter(completed), 0).label("duration_sum"),
    )


@dataclass(frozen=True)
class StatusCounts:
    """Jobs of one group by outcome, and the completed jobs' durations."""

    total: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    with_duration: int = 0
    duration_sum: int = 0

    @classmethod
    def of(cls, row: Any) -> StatusCounts:
        """From a row with the ``COUNTED`` columns (``outcome_columns()`` or the rollup)."""
        return cls(**{column: int(getattr(row, column)) for column in COUNTED})

    @property
    def active(self) -> int:
        return self.total - self.completed - self.failed - self.cancelled

    def __add__(self, other: StatusCounts) -> StatusCounts:
        return StatusCounts(
            **{column: getattr(self, column) + getattr(other, column) for column in COUNTED}
        )


def _all_finished() -> ColumnElement[bool]:
    return func.count().filter(SyncJob.status.not_in(FINISHED)) == 0


def _created_on(day: date) -> tuple[ColumnElement[bool], ...]:
    return (SyncJob.created_at >= start_of(day), SyncJob.created_at < start_of(day + ONE_DAY))


class DailyRollup:
    """The maintenance side of the rollup: roll finished days, recount days that changed."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def roll_next_day(self, session: AsyncSession) -> date | None:
        """Roll the next day that is due, if any; return it."""
        now = self.clock.now()
        due_before = day_of(now - SETTLE)
        seen = await session.get(RollupProgress, PROGRESS)
        if seen is not None and seen.through_day >= due_before:
            return None  # the usual answer, without taking the lock
        progress = await self._progress(session, now)
        day = progress.through_day
        if day >= due_before:
            return None
        statement = (
            _insert(session)
            .from_select(
                ["company_id", "day", "platform", *COUNTED, "is_final", "version", "updated_at"],
                select(
                    SyncJob.company_id,
                    literal(day, Date),
                    SyncJob.platform,
                    *outcome_columns(),
                    _all_finished(),
                    literal(0),
                    literal(now, DailySyncStats.updated_at.type),
                )
                .where(*_created_on(day))
                .group_by(SyncJob.company_id, SyncJob.platform),
            )
            .on_conflict_do_nothing()
        )
        await session.execute(statement)
        progress.through_day = day + ONE_DAY
        progress.updated_at = now
        return day

    async def recount_one(self, session: AsyncSession) -> tuple[str, date] | None:
        """Count one company's not-final day again (the oldest one due); return it, if any."""
        now = self.clock.now()
        progress = await session.get(RollupProgress, PROGRESS)
        if progress is None:
            return None
        found = (
            await session.execute(
                select(DailySyncStats.company_id, DailySyncStats.day)
                .where(
                    DailySyncStats.is_final.is_(False),
                    DailySyncStats.day < progress.through_day,
                    DailySyncStats.updated_at < now - RECOUNT_AFTER,
                )
                .order_by(DailySyncStats.day)
                .limit(1)
            )
        ).first()
        if found is None:
            return None
        company_id, day = found
        locked = await session.execute(
            select(DailySyncStats.platform, DailySyncStats.version)
            .where(DailySyncStats.company_id == company_id, DailySyncStats.day == day)
            .with_for_update()
        )
        versions: dict[str, int] = dict(locked.all())
        counted = await session.execute(
            select(SyncJob.platform, *outcome_columns(), _all_finished())
            .where(SyncJob.company_id == company_id, *_created_on(day))
            .group_by(SyncJob.platform)
        )
        rows = {platform: values for platform, *values in counted.all()}
        for platform in versions.keys() | rows.keys():
            *counts, is_final = rows.get(platform, (0,) * len(COUNTED) + (True,))
            values = dict(zip(COUNTED, counts, strict=True))
            insert = _insert(session).values(
                company_id=company_id,
                day=day,
                platform=platform,
                **values,
                is_final=bool(is_final),
                version=0,
                updated_at=now,
            )
            await session.execute(
                insert.on_conflict_do_update(
                    index_elements=list(_STATS.primary_key.columns),
                    set_={**values, "is_final": bool(is_final), "updated_at": now},
                    # A row we did not lock (-1) or that changed since is left to the next count.
                    where=_STATS.c.version == versions.get(platform, -1),
                )
            )
        return company_id, day

    async def _progress(self, session: AsyncSession, now: datetime) -> RollupProgress:
        """The progress row, locked; created on first use from the oldest job's day."""
        statement = (
            select(RollupProgress)
            .where(RollupProgress.name == PROGRESS)
            .with_for_update()
            .execution_options(populate_existing=True)  # what the unlocked read saw may be old
        )
        progress = (await session.execute(statement)).scalar_one_or_none()
        if progress is None:
            oldest = await session.scalar(select(func.min(SyncJob.created_at)))
            first = day_of(oldest or now)
            await session.execute(
                _insert(session, _PROGRESS)
                .values(name=PROGRESS, from_day=first, through_day=first, updated_at=now)
                .on_conflict_do_nothing()
            )
            progress = (await session.execute(statement)).scalar_one()
        return progress


async def reopen_day(session: AsyncSession, job: SyncJob, now: datetime) -> None:
    """A finished job goes back to the queue: its day's row is no longer final (see the module
    docstring). Call it in the transaction that re-queues the job."""
    zeros = dict.fromkeys(COUNTED, 0)
    statement = (
        _insert(session)
        .values(
            company_id=job.company_id,
            day=day_of(job.created_at),
            platform=job.platform,
            **zeros,
            is_final=False,
            version=1,
            updated_at=now,
        )
        .on_conflict_do_update(
            index_elements=list(_STATS.primary_key.columns),
            set_={"is_final": False, "version": _STATS.c.version + 1, "updated_at": now},
        )
    )
    await session.execute(statement)


# ---- reading: whole days from the rollup, the rest from the jobs ------------------------------

Range = tuple[datetime | None, datetime | None, bool]
"""Jobs created in ``[lower, upper]`` (``upper`` excluded when the flag is False; None: open)."""


@dataclass(frozen=True)
class _Plan:
    """How to count a window: rollup days ``[first, stop)`` minus ``excluded``, jobs in ``raw``."""

    first: date
    stop: date
    excluded: frozenset[date]
    raw: list[Range]

    def rollup_rows(self, company_id: str, platform: str | None) -> list[ColumnElement[bool]]:
        where = [
            DailySyncStats.company_id == company_id,
            DailySyncStats.day >= self.first,
            DailySyncStats.day < self.stop,
            DailySyncStats.day.not_in(self.excluded),
        ]
        if platform is not None:
            where.append(DailySyncStats.platform == platform)
        return where


async def count_outcomes(
    session: AsyncSession,
    company_id: str,
    start: datetime | None,
    end: datetime | None,
    platform: str | None = None,
) -> dict[str, StatusCounts]:
    """Outcomes of the company's jobs created in ``[start, end]`` (open where None), by platform.

    Whole days come from the rollup where every row of the day is final; the window's edges,
    the days not rolled yet and the reopened days are counted from the jobs.
    """
    plan = await _plan(session, company_id, start, end, platform)
    totals: dict[str, StatusCounts] = {}
    for lower, upper, upper_included in plan.raw:
        statement = (
            select(SyncJob.platform, *outcome_columns())
            .where(*_jobs_in(company_id, lower, upper, upper_included, platform))
            .group_by(SyncJob.platform)
        )
        for row in (await session.execute(statement)).all():
            totals[row.platform] = totals.get(row.platform, StatusCounts()) + StatusCounts.of(row)
    if plan.first < plan.stop:
        rolled = (
            select(
                DailySyncStats.platform,
                *(func.sum(getattr(DailySyncStats, column)).label(column) for column in COUNTED),
            )
            .where(*plan.rollup_rows(company_id, platform))
            .group_by(DailySyncStats.platform)
        )
        for row in (await session.execute(rolled)).all():
            totals[row.platform] = totals.get(row.platform, StatusCounts()) + StatusCounts.of(row)
    return totals


async def count_created(
    session: AsyncSession,
    company_id: str,
    start: datetime | None,
    end: datetime | None,
    platform: str | None = None,
    status: str | None = None,
) -> int:
    """How many of the company's jobs created in ``[start, end]`` have ``status`` (any: None).

    ``status`` must be None or a finished status (``FINISHED``): only those are in the rollup.
    """
    if status is not None and status not in FINISHED:
        raise ValueError(f"the rollup counts finished jobs only, not {status!r}")
    plan = await _plan(session, company_id, start, end, platform)
    total = 0
    for lower, upper, upper_included in plan.raw:
        where = _jobs_in(company_id, lower, upper, upper_included, platform)
        if status is not None:
            where.append(SyncJob.status == status)
        total += await session.scalar(select(func.count()).where(*where)) or 0
    if plan.first < plan.stop:
        column = getattr(DailySyncStats, status or "total")
        rolled = select(func.sum(column)).where(*plan.rollup_rows(company_id, platform))
        total += await session.scalar(rolled) or 0
    return int(total)


def _jobs_in(
    company_id: str,
    lower: datetime | None,
    upper: datetime | None,
    upper_included: bool,
    platform: str | None,
) -> list[ColumnElement[bool]]:
    where = [SyncJob.company_id == company_id]
    if lower is not None:
        where.append(SyncJob.created_at >= lower)
    if upper is not None:
        where.append(SyncJob.created_at <= upper if upper_included else SyncJob.created_at < upper)
    if platform is not None:
        where.append(SyncJob.platform == platform)
    return where


async def _plan(
    session: AsyncSession,
    company_id: str,
    start: datetime | None,
    end: datetime | None,
    platform: str | None,
) -> _Plan:
    """Split ``[start, end]`` into whole days the rollup answers and ranges of jobs to count."""
    everything = _Plan(
        first=date.min, stop=date.min, excluded=frozenset(), raw=[(start, end, True)]
    )
    progress = await session.get(RollupProgress, PROGRESS)
    if progress is None:
        return everything
    first = progress.from_day
    if start is not None:
        whole_from = day_of(start) if start == start_of(day_of(start)) else day_of(start) + ONE_DAY
        first = max(first, whole_from)
    stop = progress.through_day if end is None else min(day_of(end), progress.through_day)
    if first >= stop:
        return everything
    statement = (
        select(DailySyncStats.day)
        .distinct()
        .where(
            DailySyncStats.company_id == company_id,
            DailySyncStats.day >= first,
            DailySyncStats.day < stop,
            DailySyncStats.is_final.is_(False),
        )
    )
    if platform is not None:
        statement = statement.where(DailySyncStats.platform == platform)
    excluded = frozenset((await session.execute(statement)).scalars())
    ranges: list[Range] = [
        (start, start_of(first), False),
        *((start_of(day), start_of(day + ONE_DAY), False) for day in sorted(excluded)),
        (start_of(stop), end, True),
    ]
    raw = [r for r in ranges if not _is_empty(*r)]
    return _Plan(first=first, stop=stop, excluded=excluded, raw=raw)


def _is_empty(lower: datetime | None, upper: datetime | None, upper_included: bool) -> bool:
    if lower is None or upper is None:
        return False
    return lower > upper or (lower == upper and not upper_included)
