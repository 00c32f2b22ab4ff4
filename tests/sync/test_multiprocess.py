"""The queue across real OS processes on PostgreSQL: every job runs exactly once; a worker killed
with SIGKILL mid-job has its jobs finished by the others once its leases expire."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, insert, text

from menusync.core.security import SecretBox
from menusync.menus.samples import sample_menu
from menusync.models import metadata
from menusync.sync.models import SyncJob
from tests.sync.proc_worker import TEST_KEY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
COMPANY = "acme"


def _sync_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql+psycopg://", 1)


@pytest.fixture
def clean_postgres(postgres_url: str) -> str:
    tables = ", ".join(table.name for table in reversed(metadata.sorted_tables))
    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    return postgres_url


def _seed(url: str, log_path: Path, jobs: int, *, delay: float = 0.0) -> list[str]:
    engine = create_engine(_sync_url(url))
    now = datetime.now(UTC)
    menu_id = uuid.uuid4()
    document = sample_menu().to_document()
    markers = [f"job-{index:05d}" for index in range(jobs)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO menus (id, company_id, name, document, version, content_hash, created_at, updated_at) "
                "VALUES (:id, :c, 'm', CAST(:doc AS jsonb), 1, 'h', :now, :now)"
            ),
            {"id": menu_id, "c": COMPANY, "doc": __import__("json").dumps(document), "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO platform_connections (id, company_id, platform, credentials_encrypted, settings, store_key, "
                "is_enabled, status, created_at, updated_at) VALUES (:id, :c, 'fake', :cred, CAST(:settings AS jsonb), "
                "'fake-store', true, 'connected', :now, :now)"
            ),
            {
                "id": uuid.uuid4(),
                "c": COMPANY,
                "cred": SecretBox([TEST_KEY]).seal({}),
                "settings": __import__("json").dumps(
                    {"store": "fake-store", "log_path": str(log_path), "delay_seconds": delay}
                ),
                "now": now,
            },
        )
        conn.execute(
            insert(SyncJob),
            [
                {
                    "id": uuid.uuid4(),
                    "company_id": COMPANY,
                    "menu_id": menu_id,
                    "platform": "fake",
                    "store_key": f"store-{index}",
                    "kind": "menu",
                    "status": "pending",
                    "priority": 5,
                    "sequence": 0,
                    "attempt": 0,
                    "max_attempts": 4,
                    "next_attempt_at": now,
                    "request": {"configuration": {"marker": marker}, "itemIds": None},
                    "trigger": "manual",
                    "stage": "queued",
                    "progress": 0,
                    "items_total": 0,
                    "items_processed": 0,
                    "is_forced": True,
                    "is_unchanged": False,
                    "cancel_requested": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for index, marker in enumerate(markers)
            ],
        )
    engine.dispose()
    return markers


def _start(url: str, data_dir: Path, concurrency: int, lease: float) -> subprocess.Popen[bytes]:
    with (data_dir / f"worker-{uuid.uuid4().hex[:6]}.log").open("wb") as errors:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sync.proc_worker",
                url,
                str(data_dir),
                str(concurrency),
                str(lease),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "MENUSYNC_LOG__LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM platform_sync_logs GROUP BY status"
        ).fetchall()
    return {status: int(count) for status, count in rows}


def _wait_until_done(url: str, total: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = _counts(url)
        if counts.get("completed", 0) + counts.get("failed", 0) == total:
            return counts
        time.sleep(0.25)
    raise AssertionError(f"jobs did not finish in {timeout} s: {counts}")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def test_four_worker_processes_run_every_job_exactly_once(
    clean_postgres: str, tmp_path: Path
) -> None:
    log = tmp_path / "pushes.log"
    markers = _seed(clean_postgres, log, 2000)
    processes = [_start(clean_postgres, tmp_path, 4, 30) for _ in range(4)]
    try:
        counts = _wait_until_done(clean_postgres, len(markers), timeout=240)
    finally:
        _stop(processes)

    pushes = Counter(line.split()[0] for line in log.read_text().splitlines())
    assert counts == {"completed": 2000}
    assert set(pushes) == set(markers)
    assert max(pushes.values()) == 1, [m for m, n in pushes.items() if n > 1][:5]
    workers = Counter(line.split()[1] for line in log.read_text().splitlines())
    assert len(workers) == 4, "every process did part of the work"


def test_jobs_of_a_killed_worker_are_finished_by_the_others(
    clean_postgres: str, tmp_path: Path
) -> None:
    log = tmp_path / "pushes.log"
    markers = _seed(clean_postgres, log, 60, delay=0.5)
    victim = _start(clean_postgres, tmp_path, 4, 2)
    deadline = time.monotonic() + 60
    held: list[str] = []
    while time.monotonic() < deadline and len(held) < 4:
        with psycopg.connect(clean_postgres.replace("+psycopg", "")) as conn:
            held = [
                row[0]["configuration"]["marker"]
                for row in conn.execute(
                    "SELECT request FROM platform_sync_logs WHERE status = 'in_progress' AND lease_owner LIKE %s",
                    (f"%:{victim.pid}:%",),
                ).fetchall()
            ]
        time.sleep(0.05)
    assert held, "the victim was running jobs"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    others = [_start(clean_postgres, tmp_path, 8, 2) for _ in range(2)]
    try:
        counts = _wait_until_done(clean_postgres, len(markers), timeout=120)
    finally:
        _stop(others)

    lines = [line.split() for line in log.read_text().splitlines()]
    finished_by = dict(lines)
    assert counts == {"completed": len(markers)}
    assert set(finished_by) == set(markers)
    assert all(finished_by[marker] != str(victim.pid) for marker in held)
