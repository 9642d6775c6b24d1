"""`python -m bot` / `newsdesk run` / `make run`: start the Discord bot.

The token comes only from ``$DISCORD_TOKEN``; settings are resolved exactly like the CLI
(``--config``, ``$NEWSDESK_CONFIG``, ``./config.toml``; ``--data-dir``, ``$NEWSDESK_DATA_DIR``).
``newsdesk run [--check]`` execs this module (the engine never imports the bot), so both are
the same program.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from index import logs
from index.config import Settings
from index.errors import ConfigError, NewsdeskError
from index.pipeline import Pipeline

from .redact import RedactingFilter, redact_secret, redactor

log = logging.getLogger("newsdesk.bot")

NO_TOKEN = (
    "DISCORD_TOKEN is not set: create a bot in the Discord developer portal and export its "
    "token as DISCORD_TOKEN (see README, “Run it on your server”)"
)


RETRY_FIRST = 5.0  # seconds before the first new attempt to reach Discord
RETRY_MAX = 300.0  # the longest wait between attempts


def _network_errors() -> tuple[type[BaseException], ...]:
    """What "Discord cannot be reached" looks like: DNS and connection failures, timeouts, a
    gateway that does not answer, Discord's own 5xx."""
    import aiohttp
    import discord

    return (
        aiohttp.ClientConnectionError,  # ClientConnectorDNSError, refused, reset, …
        discord.GatewayNotFound,
        discord.DiscordServerError,
        TimeoutError,
    )


def _network_reason(error: BaseException) -> str:
    import aiohttp

    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {error.host}"
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect to {error.host}:{error.port}: {error.strerror or error}"
    return f"{type(error).__name__}: {error}"[:200]


async def serve(
    settings: Settings,
    token: str,
    pipeline: Pipeline | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    retry_first: float = RETRY_FIRST,
    retry_max: float = RETRY_MAX,
) -> int:
    """Run the bot until it is closed (SIGINT/SIGTERM or ``bot.close()``).

    When Discord cannot be reached (no network, DNS, Discord down) the bot says so in one line
    and tries again with a doubling wait (``retry_first`` … ``retry_max`` seconds) instead of
    stopping with a traceback: a service started before the network comes up just waits. The
    index is loaded once and kept across attempts.
    """
    owns = pipeline is None
    pipeline = pipeline if pipeline is not None else Pipeline(settings)
    delay = retry_first
    network = _network_errors()
    try:
        while True:
            try:
                return await _serve_once(settings, token, pipeline)
            except network as e:
                log.warning(
                    "cannot reach Discord (DNS/network): retrying in %.0f s (%s)",
                    delay,
                    _network_reason(e),
                )
            await sleep(delay)
            delay = min(retry_max, delay * 2)
    finally:
        if owns:
            pipeline.close()


async def _serve_once(settings: Settings, token: str, pipeline: Pipeline) -> int:
    import discord

    from .client import create_bot

    bot = create_bot(settings, pipeline)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM,):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
    try:
        async with bot:
            await bot.start(token)
    except discord.LoginFailure:
        raise ConfigError(
            "Discord refused the token in DISCORD_TOKEN: copy it again from the developer "
            "portal (Bot → Reset Token)"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "discord.message_content is true but the Message Content intent is not enabled for "
            "this bot: enable it in the developer portal (Bot → Privileged Gateway Intents) or "
            "set message_content = false"
        ) from None
    finally:
        for sig in (signal.SIGTERM,):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
    return 0


def run_bot(settings: Settings) -> int:
    """Start the bot with ``$DISCORD_TOKEN``; raises :class:`ConfigError` when it is missing."""
    token = settings.discord_token
    if not token:
        raise ConfigError(NO_TOKEN)
    redact_secret(token)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return asyncio.run(serve(settings, token))
    except KeyboardInterrupt:
        return 0


def setup_logging(verbose: int, level: str = "WARNING", quiet: bool = False) -> None:
    logs.setup_logging(  # as `newsdesk`: -v INFO, -vv DEBUG, -q errors only
        verbose,
        level.upper(),
        quiet=quiet,
        formatter=logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"),
    )
    for handler in logging.getLogger().handlers:  # records made outside the record factory
        handler.addFilter(RedactingFilter(redactor))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bot",
        description="Start the newsdesk Discord bot. The token is read from $DISCORD_TOKEN only.",
        epilog="config: --config, else $NEWSDESK_CONFIG, else ./config.toml. data dir: "
        "--data-dir, else $NEWSDESK_DATA_DIR, else data_dir in the config file, else "
        "~/.local/share/newsdesk.",
    )
    p.add_argument("--config", metavar="FILE", help="config file (TOML); see config.example.toml")
    p.add_argument("--data-dir", metavar="DIR", help="where the index lives")
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only errors in the log")
    p.add_argument(
        "--check",
        action="store_true",
        help="print what the bot would do and exit, without connecting: token present, "
        "intents (and which are privileged), the invite URL with the permissions it needs, "
        "where commands are synced, where it answers (exit 1 without a token)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from index.config import load_settings

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, quiet=args.quiet)
    try:
        settings = load_settings(args.config, args.data_dir)
        setup_logging(args.verbose, settings.log_level, args.quiet)
        if args.check:
            from .preflight import run_check

            return run_check(settings, sys.stdout)
        return run_bot(settings)
    except NewsdeskError as e:
        sys.stderr.write(f"newsdesk: error: {e}\n")
        return e.exit_code
    except Exception as e:
        log.critical("the bot stopped: %s: %s", type(e).__name__, e, exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
