"""``python -m bench [--scenario NAME] [scenario args...]``: run every scenario, or one.

A scenario is a module ``bench/<name>.py`` with a ``main(argv: list[str]) -> int``; arguments
this runner does not know are passed on to it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scenarios() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules([str(HERE)])
        if not module.name.startswith("_")
    )


def run(argv: list[str]) -> int:
    known = scenarios()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scenario", choices=known, help="Run only this scenario")
    parser.add_argument("--list", action="store_true", help="List the scenarios and exit")
    args, rest = parser.parse_known_args(argv)
    if args.list:
        sys.stdout.write("\n".join(known) + "\n")
        return 0
    status = 0
    for name in [args.scenario] if args.scenario else known:
        sys.stdout.write(f"== scenario {name}\n")
        sys.stdout.flush()
        main: Callable[[list[str]], int] = importlib.import_module(f"bench.{name}").main
        status = max(status, main(rest))
    return status


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
