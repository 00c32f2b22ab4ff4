"""Benchmark scenarios: one module per scenario, each with ``main(argv) -> int``.

Run them all with ``python -m bench`` (``make bench``) or one with ``--scenario NAME``.
"""
