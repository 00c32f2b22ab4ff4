"""Platforms: the adapter Protocol, the registry, platform errors and per-company connections.

Knows nothing of sync jobs.
"""
