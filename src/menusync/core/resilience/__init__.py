"""Resilience primitives shared by every process through the database: retry policy, GCRA rate
limiter, circuit breaker."""
