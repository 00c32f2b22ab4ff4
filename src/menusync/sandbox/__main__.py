"""``python -m menusync.sandbox [--host H] [--port P] [--strict] [--fast]``."""

from __future__ import annotations

import argparse

from menusync.sandbox.server import serve
from menusync.sandbox.settings import SandboxSettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m menusync.sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--strict", action="store_true", help="require registered stores")
    parser.add_argument("--fast", action="store_true", help="zero processing and retry delays")
    args = parser.parse_args(argv)
    settings = (
        SandboxSettings.fast(strict=args.strict)
        if args.fast
        else SandboxSettings(strict=args.strict)
    )
    serve(args.host, args.port, settings)


if __name__ == "__main__":
    main()
