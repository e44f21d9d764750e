"""`python -m connectors.xero.sandbox --host 127.0.0.1 --port 8800 [--config seed.json]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from connectors.xero.sandbox.app import create_app
from connectors.xero.sandbox.config import SandboxConfig, default_config


def main(argv: list[str] | None = None) -> None:
    """Serve the sandbox until interrupted."""
    parser = argparse.ArgumentParser(description="Xero sandbox server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--config", type=Path, help="SandboxConfig as JSON (default: demo seed)")
    args = parser.parse_args(argv)
    config = SandboxConfig.model_validate_json(args.config.read_text()) if args.config else default_config()
    web.run_app(create_app(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
