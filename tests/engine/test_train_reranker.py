"""`newsdesk train-reranker` end to end on a tiny SQuAD-format folder (seconds, not an hour):
examples are built as documented, a model is trained, exported to int8 ONNX, and loads and
scores through the same code the question path uses."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from index.search.rerank import OnnxReranker, pair_text
from index.tools.train_reranker import build_examples, load_squad

FACTS = [
    ("Tern", "The island of Tern lies in the north sea. Its volcano erupted in 1982. "
             "About four hundred people live on Tern. The ferry to Tern costs twelve euros."),
    ("Lyon bakery", "A bakery in Lyon won the bread prize. The baker is Paul Martin. "
                    "His sourdough starter is forty years old. He will hire two apprentices."),
    ("Chess final", "The chess final was played in Madrid. The champion won with black. "
                    "Her opponent resigned on move 61. The prize fund was two million euros."),
]  # fmt: skip
QUESTIONS = [
    ("tern", 0, "When did the volcano on Tern erupt?", "1982"),
    ("tern", 0, "How much does the ferry to Tern cost?", "twelve euros"),
    ("tern", 0, "How many people live on Tern?", "About four hundred"),
    ("lyon-bakery", 0, "Who is the baker?", "Paul Martin"),
    ("lyon-bakery", 0, "How old is the sourdough starter?", "forty years"),
    ("lyon-bakery", 0, "How many apprentices will he hire?", "two"),
    ("chess-final", 0, "Where was the chess final played?", "Madrid"),
    ("chess-final", 0, "On which move did the opponent resign?", "61"),
    ("chess-final", 0, "How large was the prize fund?", "two million euros"),
]


def make_squad(root: Path) -> Path:
    arts = root / "articles"
    arts.mkdir(parents=True)
    for title, para in FACTS:
        slug = title.lower().replace(" ", "-")
        (arts / f"{slug}.txt").write_text(f"{title}\n\n{para}\n", encoding="utf-8")
    with (root / "qa.jsonl").open("w", encoding="utf-8") as f:
        for slug, p, q, a in QUESTIONS:
            f.write(json.dumps({"question": q, "answers": [a], "article": slug, "paragraph": p}))
            f.write("\n")
    return root


def test_examples_have_the_answer_sentence_first_and_clean_negatives(tmp_path: Path) -> None:
    paras, qas = load_squad(make_squad(tmp_path / "squad"))
    groups = build_examples(paras, qas, 100, seed=1)
    assert len(groups) == len(QUESTIONS)
    random.seed(0)
    for g in groups:
        pos, *negs = g
        assert pos.label == 1.0 and negs and all(n.label == 0.0 for n in negs)
        qa = next(x for x in QUESTIONS if x[2] == pos.question)
        assert qa[3] in pos.text
        assert all(qa[3].lower() not in n.text.split(" | ")[1].lower() for n in negs)
        # negatives come from the same paragraph and from other articles
        assert any(n.text.split(" | ")[0] != pos.text.split(" | ")[0] for n in negs)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_reranker_command_writes_a_working_model(nd, tmp_path: Path, precision: str) -> None:  # type: ignore[no-untyped-def]
    data = make_squad(tmp_path / "squad")
    out = tmp_path / "model"
    r = nd(
        "train-reranker", "--data", str(data), "--out", str(out), "--questions", "8",
        "--layers", "1", "--max-len", "48", "--no-combiner", "--json", "--precision", precision,
    )  # fmt: skip
    assert r.code == 0, r.err
    figures = json.loads(r.out)
    assert figures["questions"] >= 6 and figures["pairs"] > figures["questions"]
    assert {p.name for p in out.iterdir()} >= {"model.onnx", "tokenizer.json", "reranker.json"}
    meta = json.loads((out / "reranker.json").read_text())
    assert meta["layers"] == 1 and meta["train_max_len"] == 48 and meta["max_len"] == 80
    assert meta["options"]["precision"] == precision and meta["options"]["freeze_embeddings"]
    scorer = OnnxReranker(out)
    logits = scorer.score("Who is the baker?", [pair_text("Lyon", "The baker is Paul Martin.")] * 2)
    assert logits.shape == (2,) and np.all(np.isfinite(logits))
    assert logits[0] == pytest.approx(logits[1])


def test_train_reranker_refuses_a_missing_folder(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = nd("train-reranker", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m"))
    assert "no such folder" in r.one_error_line()


def test_the_documented_recipe_parses() -> None:
    """The model card's command line (24,000 questions, 64 tokens, 50 minutes) is accepted as
    written, and the precision defaults to auto."""
    from index.cli.parser import build_parser

    args = build_parser().parse_args(
        ["train-reranker", "--data", "d", "--out", "o", "--questions", "24000", "--layers", "6",
         "--max-len", "64", "--max-minutes", "50"]
    )  # fmt: skip
    assert (args.questions, args.layers, args.max_len, args.max_minutes) == (24000, 6, 64, 50)
    assert args.precision == "auto"


def test_frozen_word_embeddings_and_precision_choice(tmp_path: Path) -> None:
    """The recipe keeps the word-embedding table as shipped and trains everything else;
    "auto" precision follows the CPU, the explicit choices are obeyed."""
    import torch

    from index.tools.train_reranker import TrainOptions, _bf16, _model

    assert _bf16("bf16") is True and _bf16("fp32") is False
    assert _bf16("auto") in (True, False)
    model, trained = _model(TrainOptions(data=tmp_path, out=tmp_path, layers=1))
    names = {n for n, _p in trained}
    assert "bert.embeddings.word_embeddings.weight" not in names
    assert "classifier.weight" in names and "bert.embeddings.position_embeddings.weight" in names
    assert len(model.bert.encoder.layer) == 1
    assert all(p.requires_grad for _n, p in trained)
    assert isinstance(model.bert.embeddings.word_embeddings.weight, torch.nn.Parameter)


def test_frozen_lower_layers_are_not_trained(tmp_path: Path) -> None:
    """--freeze-layers N: the N lowest layers and the embeddings under them get no gradient;
    the layers above, the pooler and the head still train."""
    from index.tools.train_reranker import TrainOptions, _model

    _m, trained = _model(TrainOptions(data=tmp_path, out=tmp_path, layers=3, freeze_layers=2))
    names = {n for n, _p in trained}
    assert not any(n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")) for n in names)
    assert not any(n.startswith("bert.encoder.layer.1.") for n in names)
    assert any(n.startswith("bert.encoder.layer.2.") for n in names)
    assert "classifier.weight" in names


def test_train_reranker_refuses_freezing_every_layer(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = make_squad(tmp_path / "squad")
    r = nd("train-reranker", "--data", str(data), "--out", str(tmp_path / "m"),
           "--layers", "2", "--freeze-layers", "2")  # fmt: skip
    assert r.code != 0 and "--freeze-layers" in r.one_error_line()


@pytest.mark.slow
def test_combiner_only_refits_the_combiner_on_held_out_articles(nd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--combiner-only` indexes the held-out articles, asks their questions as is and left
    out, and writes a logistic combiner over the documented features that the question path
    loads (8 articles: 2 held out)."""
    from index.search.answer import FEATURES, Combiner

    root = tmp_path / "squad"
    (root / "articles").mkdir(parents=True)
    towns = ["Arlen", "Brisk", "Corvo", "Dunmere", "Eskby", "Farrow", "Galt", "Hollin"]
    with (root / "qa.jsonl").open("w", encoding="utf-8") as f:
        for n, town in enumerate(towns):
            text = (
                f"{town} is a harbour town in the north. Its mayor is Anna {town}son. "
                f"The ferry to {town} costs {n + 3} euros. The town fair is held in May."
            )
            slug = town.lower()
            (root / "articles" / f"{slug}.txt").write_text(f"{town}\n\n{text}\n", encoding="utf-8")
            for q, a in [(f"Who is the mayor of {town}?", f"Anna {town}son"),
                         (f"How much is the ferry to {town}?", f"{n + 3} euros")]:  # fmt: skip
                row = {"question": q, "answers": [a], "article": slug, "paragraph": 0}
                f.write(json.dumps(row) + "\n")
    out = tmp_path / "model"
    args = ["--data", str(root), "--out", str(out), "--questions", "12", "--layers", "1"]
    r = nd("train-reranker", *args, "--max-len", "48", "--no-combiner", "--precision", "fp32")
    assert r.code == 0, r.err
    assert "combiner" not in json.loads((out / "reranker.json").read_text())
    r = nd("train-reranker", *args, "--combiner-only", "--json")
    assert r.code == 0, r.err
    figures = json.loads(r.out)
    assert figures["questions"] == 4 and figures["sentences"] > 4
    meta = json.loads((out / "reranker.json").read_text())
    comb = Combiner.from_meta(meta)
    assert comb is not None and len(comb.weights) == len(FEATURES)
    assert meta["combiner"]["fitted_on"] == "4 questions of 2 held-out training articles"
