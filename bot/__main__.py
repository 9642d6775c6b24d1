"""`python -m bot` / `newsdesk run`: start the Discord bot."""

from __future__ import annotations

import sys

from index.config import Settings


def run_bot(settings: Settings) -> int:
    from index.errors import ConfigError

    raise ConfigError("the Discord bot is not available in this build")


def main() -> int:
    from index.cli import main as cli_main

    return cli_main(["run", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
