"""Prometheus metrics of this process (one registry per app, so tests and apps do not collide)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.http_requests = Counter(
            "menusync_http_requests_total",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "menusync_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.sync_jobs = Counter(
            "menusync_sync_jobs_finished_total",
            "Sync jobs that reached a final status",
            ["platform", "kind", "status"],
            registry=self.registry,
        )
        self.platform_calls = Histogram(
            "menusync_platform_call_duration_seconds",
            "Platform API call latency",
            ["platform", "operation", "outcome"],
            registry=self.registry,
        )
