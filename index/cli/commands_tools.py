"""The commands that run a tool: `eval`, `train-reranker`, `bench`, `migrate`, and `run`
(which hands over to the Discord bot).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from index.cli.render import plural, progress_bars
from index.config import Settings
from index.errors import ConfigError, SourceError


def cmd_eval(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.evaluate import markdown_table, run_eval

    data_dir = Path(args.data_dir) if getattr(args, "data_dir", None) else None
    if not args.corpus.is_dir():
        raise SourceError(str(args.corpus), "no such folder")
    if args.reranker:
        answer = dataclasses.replace(settings.answer, reranker=args.reranker)
        settings = dataclasses.replace(settings, answer=answer)
    runs = [(args.mode, settings)]
    if args.mode == "all":
        runs = [(m, settings) for m in ("bm25", "dense", "hybrid")]
        if settings.answer.reranker.lower() != "none":
            old = dataclasses.replace(settings.answer, reranker="none")
            runs.append(("hybrid", dataclasses.replace(settings, answer=old)))
    results = []
    with progress_bars(not args.quiet) as progress, contextlib.ExitStack() as stack:
        if len(runs) > 1 and data_dir is None:  # index once, ask several times
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nd-eval-")))
        for mode, run_settings in runs:
            results.append(
                run_eval(
                    run_settings,
                    args.corpus,
                    args.qa,
                    k=args.k,
                    mode=mode,
                    leave_out=args.leave_out,
                    data_dir=data_dir,
                    limit=args.limit,
                    progress=progress,
                    keep_details=bool(args.details),
                    alone=args.alone,
                    typos=max(0, args.typos),
                )
            )
    if len(results) > 1:
        if args.json:
            print(json.dumps([r.to_json() for r in results]), file=out)
        else:
            print(markdown_table(results), file=out)
        return 0
    res = results[0]
    if args.calibrate:
        _calibrate(args, res, out)
    if args.details:
        with args.details.open("w", encoding="utf-8") as f:
            for d in res.details:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(res.to_json()), file=out)
    else:
        print(res.table(), file=out)
    return 0


def cmd_train_reranker(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.combiner_fit import fit_combiner
    from index.tools.train_reranker import TrainOptions, train

    if not args.data.is_dir():
        raise SourceError(str(args.data), "no such folder")
    if not 0 <= args.freeze_layers < args.layers:
        raise ConfigError(
            f"--freeze-layers {args.freeze_layers}: must be 0 to {args.layers - 1} "
            f"(--layers {args.layers}: at least one layer trains)"
        )
    opts = TrainOptions(
        data=args.data,
        out=args.out,
        questions=args.questions,
        layers=args.layers,
        max_len=args.max_len,
        max_minutes=max(0.0, args.max_minutes),
        seed=args.seed,
        precision=args.precision,
        freeze_layers=args.freeze_layers,
    )
    say = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    if args.combiner_only:
        comb = fit_combiner(args.out, args.data, settings, args.seed, progress=say)
        print(json.dumps(comb) if args.json else f"combiner: {comb}", file=out)
        return 0
    figures = train(opts, progress=say)
    if not args.no_combiner:
        figures["combiner"] = fit_combiner(args.out, args.data, settings, args.seed, progress=say)
    if args.json:
        print(json.dumps(figures), file=out)
    else:
        print(
            f"Trained on {figures['questions']:,} questions ({figures['pairs']:,} pairs) in "
            f"{figures['train_minutes']} min; held-out top-1 {figures['heldout_top1']:.3f}; "
            f"wrote {args.out}",
            file=out,
        )
    return 0


def _calibrate(args: argparse.Namespace, res: Any, out: TextIO) -> None:
    from index.search.rerank import META_FILE
    from index.tools.evaluate import calibrate

    t, rows = calibrate(res)
    for thr, answered, abstained in rows:
        mark = "  <- chosen" if abs(thr - t) < 1e-9 else ""
        print(
            f"threshold {thr:.2f}: answered {answered:.3f}, abstained {abstained:.3f}{mark}",
            file=out,
        )
    folder = Path(args.reranker) if args.reranker else None
    if folder is not None and (folder / META_FILE).is_file():
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        meta["threshold"] = t
        (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        print(f"wrote threshold {t:.2f} to {folder / META_FILE}", file=out)


def cmd_bench(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    if args.backend in ("faiss", "milvus"):
        return cmd_bench_store(args, settings, out)
    from index.tools.bench import BenchOptions, run_bench
    from index.tools.bench_report import markdown_report

    opts = BenchOptions(
        sizes=args.sizes,
        full=args.full,
        corpus=args.corpus,
        backend=args.backend,
        questions=max(1, args.questions),
    )
    with progress_bars(not args.quiet) as progress:
        results = run_bench(settings, opts, progress)
    return _bench_output(args, results, markdown_report, out)


def _bench_output(
    args: argparse.Namespace,
    results: dict[str, Any],
    report: Callable[[dict[str, Any]], str],
    out: TextIO,
) -> int:
    """Save the results as JSON (``--out``) and print them as JSON or as a report."""
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(results), file=out)
    else:
        print(report(results), file=out)
        print(f"\nResults saved to {args.out}", file=out)
    return 0


def cmd_bench_store(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``bench --backend faiss|milvus``: the vector-store benchmark (index/tools/bench_store.py)."""
    from index.tools.bench_store import markdown_store_report, run_store_bench

    sizes = args.sizes if args.sizes != [10_000, 100_000] else [100_000]
    with progress_bars(not args.quiet) as progress:
        results = run_store_bench(
            settings, sizes, questions=max(1, args.questions), progress=progress
        )
    return _bench_output(args, results, markdown_store_report, out)


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    from index.tools.migrate import migrate

    with progress_bars(not (args.quiet or args.json)) as progress:
        report = migrate(settings, args.to, args.uri, progress=progress)
    if args.json:
        print(json.dumps(report.to_json()), file=out)
        return 0
    from index.tools.migrate import target_settings

    uri = target_settings(settings, args.to, args.uri).store.uri
    print(
        f"Copied {plural(report.articles, 'article')} and {plural(report.passages, 'passage')} "
        f"to {report.target} "
        f"in {report.seconds:.1f}s (vectors copied, nothing re-embedded).\n"
        f'To use it, set in the config:\n  [store]\n  backend = "milvus"\n'
        + (f"  uri = {json.dumps(uri)}\n" if uri else ""),
        file=out,
        end="",
    )
    return 0


def bot_command(args: argparse.Namespace) -> list[str]:
    """``python -m bot`` with the options of this ``newsdesk run`` passed on.

    ``-P``: the working directory is not put first on ``sys.path``, so a ``bot`` folder where
    newsdesk is started (another project's) is never run instead; the folder this ``index``
    package was imported from is put first on ``PYTHONPATH`` instead (see :func:`bot_env`).
    """
    argv = [sys.executable, "-P", "-m", "bot"]
    if getattr(args, "config", None):
        argv += ["--config", str(args.config)]
    if getattr(args, "data_dir", None):
        argv += ["--data-dir", str(args.data_dir)]
    argv += ["-v"] * (args.verbose or 0)
    if args.quiet:
        argv.append("--quiet")
    if args.check:
        argv.append("--check")
    return argv


def bot_env() -> dict[str, str]:
    """This environment, with the folder holding this ``index`` package (a checkout) first on
    ``PYTHONPATH``: the bot runs against the same newsdesk. Not when that folder is
    site-packages, which is on the path anyway and must not come before the standard library."""
    import site

    import index

    root = Path(index.__file__).resolve().parents[1]
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root in installed:
        return dict(os.environ)
    paths = [str(root), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def cmd_run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """``newsdesk run [--check]``: this process becomes ``python -m bot`` (``os.execve``: the
    same process id, signals, stdout/stderr and exit status, which a service manager relies
    on). The engine never imports the Discord face; the bot prints its own one-line errors.
    The settings were loaded once already, so a broken config is reported by the CLI as usual.
    """
    argv = bot_command(args)
    env = bot_env()
    out.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":  # pragma: no cover - Windows has no exec that keeps the process
        import subprocess

        return subprocess.call(argv, env=env)
    os.execve(sys.executable, argv, env)
    return 1  # pragma: no cover - execve does not return
