"""The combiner of ``newsdesk train-reranker``: a logistic regression over the cross-encoder's
logit and cheap, corpus-independent features of each shortlisted sentence, fitted on the
held-out training articles (never seen by the cross-encoder) and written into the model's
reranker.json (`--combiner-only` refits it)."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ConfigError
from index.search.rerank import META_FILE
from index.tools.train_reranker import _split, load_squad

log = logging.getLogger(__name__)


def fit_combiner(
    model_dir: Path,
    data: Path,
    settings: Any,
    seed: int = 13,
    holdout_articles: int = 12,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit the logistic combiner (index.search.answer.Combiner) on the held-out training
    articles, which the cross-encoder never saw: index them in a temporary data dir, ask each
    question as is and with its article left out, record every shortlisted sentence's features
    with its label (contains the answer), fit, and write the weights into ``model_dir``'s
    reranker.json."""
    import dataclasses
    import tempfile

    from index.pipeline import Pipeline
    from index.search.answer import FEATURES

    say = progress or (lambda s: log.info("%s", s))
    paras, qas = load_squad(data)
    _train, held = _split(paras, qas, holdout_articles, seed)
    arts = sorted({q["article"] for q in held})
    if not held:
        raise ConfigError(f"{data}: too few articles to hold some out for the combiner")
    xs: list[list[float]] = []
    ys: list[float] = []
    groups: list[tuple[int, int, bool]] = []  # (start, end, answerable) rows per question
    with tempfile.TemporaryDirectory(prefix="newsdesk-combiner-") as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        for a in arts:
            shutil.copy(data / "articles" / f"{a}.txt", folder / f"{a}.txt")
        answer = dataclasses.replace(settings.answer, reranker=str(model_dir), min_confidence=0.0)
        s = dataclasses.replace(settings, data_dir=Path(tmp) / "data", answer=answer)
        with Pipeline(s) as pipe:
            pipe.add([str(folder)])
            pipe.reranker  # noqa: B018 - load it; fit on the raw logit, no combiner
            pipe._combiner = None
            ids = {Path(r.source).stem: r.id for r in pipe.list_articles()}
            for n, q in enumerate(held):
                golds = [a.lower() for a in q["answers"]]
                for lo in (False, True):
                    ex = [frozenset({ids[q["article"]]})] if lo else None
                    pipe.last_reranked = None
                    pipe.ask_many([q["question"]], k=10, exclude=ex)
                    r = pipe.last_reranked
                    if r is None or not r.scored:
                        continue
                    start = len(xs)
                    for c in r.scored:
                        xs.append(list(c.features))
                        ys.append(float(any(g in c.text.lower() for g in golds)))
                    groups.append((start, len(xs), not lo))
                if n % 200 == 0:
                    say(f"combiner features: {n:,} of {len(held):,} questions")
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    w, b = _logistic(x, y)
    figures = {
        "questions": len(held),
        "sentences": len(ys),
        "top1_logit_only": _top1(groups, x[:, 0], y),
        "top1_combined": _top1(groups, x @ w + b, y),
    }
    meta_path = model_dir / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["combiner"] = {
        "features": list(FEATURES),
        "weights": [round(float(v), 6) for v in w],
        "bias": round(float(b), 6),
        "fitted_on": f"{len(held)} questions of {len(arts)} held-out training articles",
        "figures": figures,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    say(f"combiner: top-1 {figures['top1_logit_only']:.3f} -> {figures['top1_combined']:.3f}")
    return figures


def _top1(groups: list[tuple[int, int, bool]], score: np.ndarray, y: np.ndarray) -> float:
    """Share of answerable questions whose best-scored sentence contains the answer."""
    rows = [(a, b) for a, b, answerable in groups if answerable and b > a]
    if not rows:
        return 0.0
    return round(sum(float(y[a + int(np.argmax(score[a:b]))]) for a, b in rows) / len(rows), 4)


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (a handful of features)."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    beta = np.zeros(xb.shape[1])
    reg = np.eye(xb.shape[1]) * l2
    reg[-1, -1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (p - y) + reg @ beta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])
