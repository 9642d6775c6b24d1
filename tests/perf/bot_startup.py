"""Start-up of the Discord bot: a fresh process until READY on the loopback fake Discord.

`newsdesk bench` measured this until issue 17; it lives here because the engine never imports the
bot or the tests (not even in code it runs from a string), and this needs both: ``bot.client``
and ``tests/fakes/discord/``. ``make bench`` runs it after ``newsdesk bench``.

The index the bot loads is what its start-up depends on, so by default it is built as bench
builds its largest one: the corpus bench uses (``--corpus``, else the evaluation set beside the
project, else ``samples/``) grown with synthetic passages to ``--size`` (default 100,000, bench's
largest default size). ``--data-dir`` times an existing index instead (with ``--config``).

Prints the figures bench printed: seconds from process start to READY, of them the bot's
``setup_hook`` (loading the index) and the model load, and the target: READY minus the model
load within 2 s.

    python tests/perf/bot_startup.py [--size N | --data-dir DIR] [--config FILE] [--json]
"""

from __future__ import annotations

import time

T0 = time.perf_counter()  # the fresh process' start, for --ready (before any import)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: newsdesk, its bot and its tests from here
    sys.path.insert(0, str(ROOT))

TARGET_BOT_EXTRA_S = 2.0  # bot READY minus its model load
DEFAULT_SIZE = 100_000


def ready(config: str, data_dir: str) -> None:
    """In the fresh process: start the bot on the fake Discord, print its times as JSON."""
    from bot.client import NewsdeskBot
    from index.config import load_settings
    from tests.fakes.discord import FakeDiscord, run_bot

    async def main() -> None:
        fake = FakeDiscord()
        await fake.start()
        g = fake.add_guild("Bench")
        fake.add_channel(g, "general")
        bot = NewsdeskBot(load_settings(config or None, data_dir))
        try:
            async with run_bot(fake, bot, timeout=300):
                e = bot.pipeline.embedder
                data = {
                    "ready": time.perf_counter() - T0,
                    "setup_hook": bot.load_seconds,
                    "model": getattr(e, "load_seconds", None),
                }
                print(json.dumps(data), flush=True)
        finally:
            await fake.stop()

    asyncio.run(main())


def measure(config: Path | None, data_dir: Path) -> dict[str, Any]:
    """The bot's start in a fresh process (this script with ``--ready``)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--ready",
        str(config or ""),
        str(data_dir),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"bot start-up failed: {proc.stderr.strip()[-300:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "bot_ready_s": round(data["ready"], 3),
        "bot_setup_hook_s": round(data["setup_hook"], 3) if data["setup_hook"] else None,
        "bot_model_load_s": round(data["model"], 3) if data["model"] else None,
    }


def passages_in(config: Path | None, data_dir: Path) -> int:
    from index.config import load_settings
    from index.pipeline import Pipeline

    with Pipeline(load_settings(config, data_dir)) as pipe:
        return int(pipe.store.counts()[1])


def target(res: dict[str, Any], label: str) -> dict[str, Any]:
    load = res.get("bot_model_load_s") or 0.0
    extra = round(res["bot_ready_s"] - load, 3)
    return {
        "target": f"bot READY - model load ({label})",
        "goal": f"<= {TARGET_BOT_EXTRA_S} s",
        "measured": extra,
        "met": extra <= TARGET_BOT_EXTRA_S,
    }


def report(res: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "–" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:g}"

    t = res["target"]
    met = "yes" if t["met"] else "no"
    return "\n".join(
        [
            "| bot start-up | passages | READY s | setup_hook s | model load s |",
            "|---|---:|---:|---:|---:|",
            f"| {res['label']} | {fmt(res['passages'])} | {fmt(res['bot_ready_s'])} | "
            f"{fmt(res['bot_setup_hook_s'])} | {fmt(res['bot_model_load_s'])} |",
            "",
            "| target | goal | measured | met |",
            "|---|---|---:|---|",
            f"| {t['target']} | {t['goal']} | {fmt(t['measured'])} | {met} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, metavar="FILE", help="config file (TOML)")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="time this index as it is")
    p.add_argument("--corpus", type=Path, metavar="DIR", help="articles to index (as bench)")
    p.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        metavar="N",
        help=f"grow the index to N passages (default {DEFAULT_SIZE:,}; 0: the corpus only)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--ready", nargs=2, metavar=("CONFIG", "DATA_DIR"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ready:
        ready(*args.ready)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.data_dir is not None:
        config, data_dir, label = args.config, args.data_dir, str(args.data_dir)
        res = measure(config, data_dir)
        passages = passages_in(config, data_dir)
    else:
        from index.config import load_settings
        from index.tools.bench import Bench, BenchOptions

        settings = load_settings(args.config)
        sizes = [args.size] if args.size > 0 else []
        bench = Bench(settings, BenchOptions(sizes=sizes, corpus=args.corpus))
        try:
            data_dir = bench.build_index(args.size)
            res = measure(bench.cfg_path, data_dir)
            passages = passages_in(bench.cfg_path, data_dir)
            label = str(args.size) if args.size > 0 else "corpus"
        finally:
            bench.close()
    res = {"label": label, "passages": passages, **res}
    res["target"] = target(res, label)
    print(json.dumps(res) if args.json else report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
