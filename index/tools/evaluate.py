"""`newsdesk eval`: retrieval and answer quality on a question set (SQuAD-style JSONL).

QA file: one JSON object per line with ``question``, ``answers`` (strings), ``article`` (the
file stem of the gold article in the corpus folder). A question counts as a hit at k when a gold
answer string (case-insensitive) is inside one of the first k returned passages; the answer is
accurate when a gold answer string is inside the returned quote.

``leave_out``: each question is asked again with its gold article left out of retrieval (as if
it were not indexed), so it is unanswerable; the share abstained is reported beside the share
of answerable questions answered.

``alone``: each article is also indexed on its own and its questions asked there; the share of
questions that get the same verdict (answered or abstained) as with the whole corpus indexed
says whether abstention depends on what else is indexed.

``typos``: that many questions (a seeded sample) are asked again with one typo injected into a
content word; the drop in answer accuracy on those questions is reported.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.config import Settings
from index.embedding.base import Embedder
from index.errors import NewsdeskError, SourceError
from index.models import Answer, Progress

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
    reranker: str = "bundled"
    batch_seconds: float = 0.0  # asking every question once, in batches (no indexing)
    same_verdict_alone: float | None = None
    typo_questions: int = 0
    typo_accuracy_drop: float | None = None  # accuracy on those questions minus with typos
    details: list[dict[str, Any]] = field(default_factory=list)
    # confidence of every answerable / left-out question, for calibrate()
    confidences: list[float] = field(default_factory=list)
    lo_confidences: list[float] = field(default_factory=list)

    def to_json(self, with_details: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("confidences")
        d.pop("lo_confidences")
        if not with_details:
            d.pop("details")
        return d

    def table(self) -> str:
        rows = [
            ("mode", self.mode),
            ("reranker", self.reranker),
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
        if self.same_verdict_alone is not None:
            rows.append(("same verdict, alone vs all", f"{self.same_verdict_alone:.3f}"))
        if self.typo_accuracy_drop is not None:
            rows.append(
                (
                    f"typo accuracy drop ({self.typo_questions} q.)",
                    f"{100 * self.typo_accuracy_drop:.1f} points",
                )
            )
        rows += [
            ("latency p50 / p95", f"{self.latency_ms_p50:.1f} / {self.latency_ms_p95:.1f} ms"),
            ("all questions, batch", f"{self.batch_seconds:.1f} s"),
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
    progress: Progress | None = None,
    keep_details: bool = False,
    alone: bool = False,
    typos: int = 0,
) -> EvalResult:
    from index.pipeline import Pipeline

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
            t1 = time.perf_counter()
            answers = _ask_all(pipe, questions, k, mode, None, progress, "questions")
            batch_seconds = time.perf_counter() - t1
            lo_answers = None
            if leave_out:
                exclude = [frozenset({stem_to_id.get(q.article, "")}) for q in qas]
                lo_answers = _ask_all(pipe, questions, k, mode, exclude, progress, "left out")
            typo_drop = None
            typo_idx: list[int] = []
            if typos:
                typo_idx, typo_qs = typo_sample(questions, typos)
                typo_ans = _ask_all(pipe, typo_qs, k, mode, None, progress, "with typos")
                base = sum(_correct(qas[i], answers[i]) for i in typo_idx)
                got = sum(_correct(qas[i], a) for i, a in zip(typo_idx, typo_ans, strict=True))
                typo_drop = (base - got) / max(len(typo_idx), 1)
            same = None
            if alone:
                same = _same_verdict_alone(
                    settings, corpus, qas, answers, k, mode, pipe.embedder, progress
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    res = _score(
        qas, answers, lo_answers, mode, k, n_articles, n_passages, index_seconds, keep_details
    )
    res.reranker = settings.answer.reranker
    res.confidences = [a.confidence for a in answers if not isinstance(a, NewsdeskError)]
    if lo_answers is not None:
        res.lo_confidences = [a.confidence for a in lo_answers if not isinstance(a, NewsdeskError)]
    res.batch_seconds = batch_seconds
    res.same_verdict_alone = same
    res.typo_questions = len(typo_idx)
    res.typo_accuracy_drop = typo_drop
    return res


def _correct(qa: QA, ans: Answer | NewsdeskError) -> bool:
    if isinstance(ans, NewsdeskError) or ans.quote is None:
        return False
    text = ans.quote.text.lower()
    return any(g.lower() in text for g in qa.answers)


def _same_verdict_alone(
    settings: Settings,
    corpus: Path,
    qas: Sequence[QA],
    answers: Sequence[Answer | NewsdeskError],
    k: int,
    mode: str,
    embedder: Embedder,
    progress: Progress | None,
) -> float:
    """Share of questions whose verdict (answered / abstained) with only their own article
    indexed equals the verdict with the whole corpus indexed."""
    from index.pipeline import Pipeline

    by_article: dict[str, list[int]] = {}
    for i, qa in enumerate(qas):
        by_article.setdefault(qa.article, []).append(i)
    same = total = 0
    files = {p.stem: p for p in corpus.iterdir() if p.is_file()}
    for n, (article, idx) in enumerate(sorted(by_article.items()), 1):
        if article not in files:
            continue
        with tempfile.TemporaryDirectory(prefix="newsdesk-alone-") as d:
            alone = dataclasses.replace(settings, data_dir=Path(d))
            with Pipeline(alone, embedder) as pipe:
                pipe.add([str(files[article])])
                got = _ask_all(pipe, [qas[i].question for i in idx], k, mode, None, None, "")
        for i, a in zip(idx, got, strict=True):
            b = answers[i]
            if isinstance(a, NewsdeskError) or isinstance(b, NewsdeskError):
                continue
            total += 1
            same += (a.quote is None) == (b.quote is None)
        if progress:
            progress("articles alone", n, len(by_article))
    return same / max(total, 1)


_KEYBOARD_NEIGHBOURS = {
    "a": "qs", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj",
    "i": "uo", "j": "hk", "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o",
    "q": "w", "r": "et", "s": "ad", "t": "ry", "u": "yi", "v": "cb", "w": "qe", "x": "zc",
    "y": "tu", "z": "x",
}  # fmt: skip


def add_typo(question: str, rng: random.Random) -> str:
    """One typo in one content word (5+ letters): a dropped, doubled, swapped or mistyped
    letter, as people make them. Returns the question unchanged if no word qualifies."""
    words = list(re.finditer(r"[A-Za-z]{5,}", question))
    stop = {"which", "where", "there", "their", "about", "would", "could", "should", "these"}
    words = [m for m in words if m.group().lower() not in stop]
    if not words:
        return question
    m = rng.choice(words)
    w = m.group()
    i = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        w2 = w[:i] + w[i + 1 :]
    elif kind == 1:
        w2 = w[:i] + w[i] + w[i:]
    elif kind == 2:
        w2 = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    else:
        w2 = w[:i] + rng.choice(_KEYBOARD_NEIGHBOURS.get(w[i].lower(), "e")) + w[i + 1 :]
    return question[: m.start()] + w2 + question[m.end() :]


def typo_sample(questions: Sequence[str], n: int, seed: int = 7) -> tuple[list[int], list[str]]:
    """``n`` question indexes (seeded) and those questions with one typo each."""
    rng = random.Random(seed)
    idx = sorted(rng.sample(range(len(questions)), min(n, len(questions))))
    return idx, [add_typo(questions[i], rng) for i in idx]


def _ask_all(
    pipe: Any,
    questions: list[str],
    k: int,
    mode: str,
    exclude: list[frozenset[str]] | None,
    progress: Progress | None,
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
    alone = any(r.same_verdict_alone is not None for r in results)
    typo = any(r.typo_accuracy_drop is not None for r in results)
    head = ["mode", "reranker", "hit@1", "hit@3", "hit@5", "hit@10", "MRR@10", "answer acc."]
    head.append("answered")
    if lo:
        head.append("abstained (left out)")
    if alone:
        head.append("same verdict alone")
    if typo:
        head.append("typo drop (points)")
    head += ["p50 ms", "p95 ms", "batch s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r.mode, r.reranker] + [f"{r.hit_at[str(k)]:.3f}" for k in KS]
        row += [f"{r.mrr_at_10:.3f}", f"{r.answer_accuracy:.3f}", f"{r.answered_share:.3f}"]
        if lo:
            row.append(f"{r.leave_out_abstained:.3f}" if r.leave_out_abstained is not None else "")
        if alone:
            row.append(f"{r.same_verdict_alone:.3f}" if r.same_verdict_alone is not None else "")
        if typo:
            drop = r.typo_accuracy_drop
            row.append(f"{100 * drop:.1f}" if drop is not None else "")
        row += [f"{r.latency_ms_p50:.1f}", f"{r.latency_ms_p95:.1f}", f"{r.batch_seconds:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    r0 = results[0]
    lines.append("")
    lines.append(
        f"{r0.questions} questions, {r0.articles} articles, {r0.passages} passages; "
        f"indexing {r0.index_seconds:.1f} s."
    )
    return "\n".join(lines)


def calibrate(
    res: EvalResult, answered: float = 0.96, step: float = 0.005
) -> tuple[float, list[tuple[float, float, float]]]:
    """The abstention threshold from a ``leave_out`` run: the highest at which at least
    ``answered`` of the answerable questions still get a quote (so as many unanswerable ones
    as possible abstain); and (threshold, answered, abstained) rows around it."""
    if not res.confidences or not res.lo_confidences:
        raise SourceError("eval", "--calibrate needs --leave-out")
    import bisect

    ans = sorted(res.confidences)
    lo = sorted(res.lo_confidences)
    rows = []
    for i in range(1, int(1 / step)):
        t = round(i * step, 4)
        rows.append(
            (t, 1 - bisect.bisect_left(ans, t) / len(ans), bisect.bisect_left(lo, t) / len(lo))
        )
    ok = [r for r in rows if r[1] >= answered]
    best = max(ok, key=lambda r: r[0]) if ok else rows[0]
    near = [r for r in rows if abs(r[0] - best[0]) <= 0.05 + 1e-9]
    return best[0], near
