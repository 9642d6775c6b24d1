"""`newsdesk eval`: retrieval and answer quality on a question set (SQuAD-style JSONL).

QA file: one JSON object per line with ``question``, ``answers`` (strings), ``article`` (the
file stem of the gold article in the corpus folder). A question counts as a hit at k when a gold
answer string (case-insensitive) is inside one of the first k returned passages; the answer is
accurate when a gold answer string is inside the returned quote.

``leave_out``: each question is asked again with its gold article left out of retrieval (as if
it were not indexed), so it is unanswerable; the share abstained is reported beside the share
of answerable questions answered.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .embedder import Embedder
from .errors import NewsdeskError, SourceError
from .models import Answer

log = logging.getLogger(__name__)

KS = (1, 3, 5, 10)


@dataclass
class QA:
    question: str
    answers: list[str]
    article: str


@dataclass
class EvalResult:
    mode: str
    k: int
    questions: int
    articles: int
    passages: int
    hit_at: dict[str, float]
    mrr_at_10: float
    answer_accuracy: float
    abstention_rate: float
    answered_share: float
    latency_ms_p50: float
    latency_ms_p95: float
    index_seconds: float
    errors: int = 0
    leave_out_abstained: float | None = None
    accuracy_when_answered: float | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, with_details: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not with_details:
            d.pop("details")
        return d

    def table(self) -> str:
        rows = [
            ("mode", self.mode),
            (
                "questions",
                f"{self.questions}  ({self.articles} articles, {self.passages} passages)",
            ),
            *[(f"hit@{k}", f"{self.hit_at[str(k)]:.3f}") for k in KS if k <= self.k],
            ("MRR@10", f"{self.mrr_at_10:.3f}"),
            ("answer accuracy", f"{self.answer_accuracy:.3f}"),
            ("abstention rate", f"{self.abstention_rate:.3f}"),
            ("answered (answerable)", f"{self.answered_share:.3f}"),
        ]
        if self.leave_out_abstained is not None:
            rows.append(("abstained (left out)", f"{self.leave_out_abstained:.3f}"))
        rows += [
            ("latency p50 / p95", f"{self.latency_ms_p50:.1f} / {self.latency_ms_p95:.1f} ms"),
            ("indexing time", f"{self.index_seconds:.1f} s"),
        ]
        if self.errors:
            rows.append(("errors", str(self.errors)))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def load_qa(path: Path, limit: int | None = None) -> list[QA]:
    out: list[QA] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(str(path), f"cannot read the question file ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            out.append(QA(str(o["question"]), [str(a) for a in o["answers"]], str(o["article"])))
        except (ValueError, KeyError, TypeError):
            raise SourceError(
                str(path), f"line {n} is not a JSON object with question, answers, article"
            ) from None
        if limit and len(out) >= limit:
            break
    if not out:
        raise SourceError(str(path), "no questions")
    return out


def _first_hit_rank(ans: Answer, golds: Sequence[str]) -> int | None:
    for rank, p in enumerate(ans.passages, 1):
        text = p.text.lower()
        if any(g in text for g in golds):
            return rank
    return None


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    idx = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[idx]


def run_eval(
    settings: Settings,
    corpus: Path,
    qa_path: Path,
    *,
    k: int = 10,
    mode: str | None = None,
    leave_out: bool = False,
    data_dir: Path | None = None,
    limit: int | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    keep_details: bool = False,
) -> EvalResult:
    from .pipeline import Pipeline

    qas = load_qa(qa_path, limit)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="newsdesk-eval-")
        data_dir = Path(tmp.name)
    settings = dataclasses.replace(settings, data_dir=data_dir)
    mode = mode or settings.retrieval.mode
    try:
        with Pipeline(settings, embedder) as pipe:
            t0 = time.perf_counter()
            pipe.add([str(corpus)], progress=progress)
            index_seconds = time.perf_counter() - t0
            stem_to_id = {Path(r.source).stem: r.id for r in pipe.list_articles()}
            n_articles, n_passages = pipe.store.counts()
            questions = [q.question for q in qas]
            answers = _ask_all(pipe, questions, k, mode, None, progress, "questions")
            lo_answers = None
            if leave_out:
                exclude = [frozenset({stem_to_id.get(q.article, "")}) for q in qas]
                lo_answers = _ask_all(pipe, questions, k, mode, exclude, progress, "left out")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return _score(
        qas, answers, lo_answers, mode, k, n_articles, n_passages, index_seconds, keep_details
    )


def _ask_all(
    pipe: Any,
    questions: list[str],
    k: int,
    mode: str,
    exclude: list[frozenset[str]] | None,
    progress: Callable[[str, int, int], None] | None,
    stage: str,
) -> list[Answer | NewsdeskError]:
    out: list[Answer | NewsdeskError] = []
    step = 64
    for i in range(0, len(questions), step):
        ex = exclude[i : i + step] if exclude else None
        out.extend(pipe.ask_many(questions[i : i + step], k=k, mode=mode, exclude=ex))
        if progress:
            progress(stage, len(out), len(questions))
    return out


def _score(
    qas: Sequence[QA],
    answers: Sequence[Answer | NewsdeskError],
    lo_answers: Sequence[Answer | NewsdeskError] | None,
    mode: str,
    k: int,
    n_articles: int,
    n_passages: int,
    index_seconds: float,
    keep_details: bool,
) -> EvalResult:
    n = len(qas)
    hits = {kk: 0 for kk in KS}
    rr = 0.0
    accurate = 0
    abstained = 0
    errors = 0
    accurate_answered = 0
    latencies: list[float] = []
    details: list[dict[str, Any]] = []
    for qa, ans in zip(qas, answers, strict=True):
        if isinstance(ans, NewsdeskError):
            errors += 1
            continue
        golds = [g.lower() for g in qa.answers]
        rank = _first_hit_rank(ans, golds)
        for kk in KS:
            if rank is not None and rank <= kk:
                hits[kk] += 1
        if rank is not None and rank <= 10:
            rr += 1.0 / rank
        latencies.append(ans.elapsed_ms)
        ok = ans.quote is not None and any(g in ans.quote.text.lower() for g in golds)
        accurate += ok
        if ans.quote is None:
            abstained += 1
        else:
            accurate_answered += ok
        if keep_details:
            details.append(
                {
                    "question": qa.question,
                    "rank": rank,
                    "quote": ans.quote.text if ans.quote else None,
                    "correct": ok,
                    "confidence": ans.confidence,
                }
            )
    lo_rate = None
    if lo_answers is not None:
        lo_ok = [a for a in lo_answers if not isinstance(a, NewsdeskError)]
        lo_rate = sum(a.quote is None for a in lo_ok) / max(len(lo_ok), 1)
        if keep_details:
            for d, a in zip(details, lo_ok, strict=False):
                d["leave_out_confidence"] = a.confidence
    answered = n - errors - abstained
    return EvalResult(
        mode=mode,
        k=k,
        questions=n,
        articles=n_articles,
        passages=n_passages,
        hit_at={str(kk): hits[kk] / n for kk in KS},
        mrr_at_10=rr / n,
        answer_accuracy=accurate / n,
        abstention_rate=abstained / n,
        answered_share=answered / n,
        latency_ms_p50=statistics.median(latencies) if latencies else 0.0,
        latency_ms_p95=_percentile(latencies, 0.95),
        index_seconds=index_seconds,
        errors=errors,
        leave_out_abstained=lo_rate,
        accuracy_when_answered=accurate_answered / answered if answered else None,
        details=details,
    )


def markdown_table(results: Sequence[EvalResult]) -> str:
    """One row per mode: the table in docs/quality.md."""
    lo = any(r.leave_out_abstained is not None for r in results)
    head = ["mode", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "answer acc.", "answered"]
    if lo:
        head.append("abstained (left out)")
    head += ["p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r.mode] + [f"{r.hit_at[str(k)]:.3f}" for k in KS]
        row += [f"{r.mrr_at_10:.3f}", f"{r.answer_accuracy:.3f}", f"{r.answered_share:.3f}"]
        if lo:
            row.append(f"{r.leave_out_abstained:.3f}" if r.leave_out_abstained is not None else "")
        row += [f"{r.latency_ms_p50:.1f}", f"{r.latency_ms_p95:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    r0 = results[0]
    lines.append("")
    lines.append(
        f"{r0.questions} questions, {r0.articles} articles, {r0.passages} passages; "
        f"indexing {r0.index_seconds:.1f} s."
    )
    return "\n".join(lines)
