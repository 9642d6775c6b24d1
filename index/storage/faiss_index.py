"""FAISS vector index whose ids are chunk ids, inner product on unit vectors.

Index types (``retrieval.index_type``; ``kind`` below is what the meta and ``stats`` show):

``flat``  exact search: ``IndexFlatIP`` (``flat-sq8``: ``IndexScalarQuantizer`` 8-bit) inside
          ``IndexIDMap2``. Cost grows linearly: about 1 ms per 10,000 passages and query.
``ivf``   inverted lists: ``IndexIVFFlat`` (``ivf-sq8``: ``IndexIVFScalarQuantizer``), about
          sqrt(n) lists of which ``ivf_nprobe`` are scanned. Ids are stored in the lists
          themselves, with a hash-table direct map so ``reconstruct`` (exact scores) and
          ``remove_ids`` work; adding and removing are incremental. Retrained when the size has
          grown or shrunk enough that the number of lists is 2x off.
``hnsw``  graph: ``IndexHNSWFlat`` (``hnsw-sq8``: ``IndexHNSWSQ``) inside ``IndexIDMap2``. Fast
          to search, slow to build; it cannot remove vectors, so a removal rebuilds the graph
          from the stored vectors (fine for an index that is mostly appended to).

``auto`` (the default) is exact ``flat`` below ``retrieval.ann_threshold`` passages and ``ivf``
from there (back to flat below 90% of the threshold, so sizes near it do not flip-flop): IVF
builds fast, updates in place and kept recall@10 >= 0.95 at a few ms per query up to 1M
passages (``newsdesk bench --full``, docs/performance.md).

8-bit scalar quantisation (``retrieval.quantize = "sq8"``) stores a byte per dimension instead of
four; its per-dimension ranges are trained on the vectors present when the index is built, so
it starts once there are ``SQ_MIN_TRAIN`` vectors (a smaller index stays float).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import IndexCorruptError
from index.lazy import lazy_module
from index.storage import policy as policy_mod
from index.storage.allowed import Allowed
from index.storage.policy import Family, IndexPolicy

if TYPE_CHECKING:
    import faiss
else:  # imported on first use: an unchanged `newsdesk index` or `stats` never needs it
    faiss = lazy_module("faiss", globals())

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)

IVF_TRAIN_PER_LIST = 64  # k-means training sample: this many vectors per list
IVF_MIN_PER_LIST = 39  # fewer training vectors per list than this and k-means complains
IVF_NITER = 10
ADD_BATCH = 65_536
# a scope of at most this many passages is searched exactly over its own vectors; a larger one
# through a FAISS selector inside the index's own search (see VectorIndex._scoped)
SCOPE_EXACT_MAX = 20_000


def ivf_nlist(n: int) -> int:
    """Lists for ``n`` vectors: the power of two nearest sqrt(n), with enough training data."""
    if n < IVF_MIN_PER_LIST * 2:
        return 1
    want = 2 ** round(math.log2(math.sqrt(n)))
    return int(max(1, min(want, 65_536, n // IVF_MIN_PER_LIST)))


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """FAISS with one OpenMP thread (per calling thread) for single-query searches: on a busy
    machine, waking a thread team costs more than scanning thousands of vectors."""
    prev = faiss.omp_get_max_threads()
    if prev == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)


def _inner(index: Any) -> Any:
    """The index that holds the vectors (inside an ``IndexIDMap2``), as its own class. Typed
    ``Any``: the parts of FAISS used here (IVF, HNSW, direct maps) are not in its stubs."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def _hnsw_m(inner: Any) -> int:
    return int(inner.hnsw.nb_neighbors(1))


def _hashtable() -> Any:
    return faiss.DirectMap.Hashtable  # type: ignore[attr-defined]


def _kind_of(index: faiss.Index) -> str:
    inner = _inner(index)
    if isinstance(inner, faiss.IndexIVFScalarQuantizer):
        return "ivf-sq8"
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    if isinstance(inner, faiss.IndexHNSWSQ):
        return "hnsw-sq8"
    if isinstance(inner, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(inner, faiss.IndexScalarQuantizer):
        return "flat-sq8"
    return "flat"


class VectorIndex:
    def __init__(self, index: faiss.Index, kind: str | None = None) -> None:
        self.index = index
        self.kind = kind or _kind_of(index)

    # -- description -------------------------------------------------------------------------
    @property
    def family(self) -> Family:
        return self.kind.split("-")[0]  # type: ignore[return-value]

    @property
    def quantized(self) -> bool:
        return self.kind.endswith("-sq8")

    @property
    def nlist(self) -> int:
        inner = _inner(self.index)
        return int(inner.nlist) if isinstance(inner, faiss.IndexIVF) else 0

    @property
    def description(self) -> str:
        """For the meta and ``stats``: the kind and its build parameters."""
        inner = _inner(self.index)
        if isinstance(inner, faiss.IndexIVF):
            return f"{self.kind} ({inner.nlist} lists)"
        if isinstance(inner, faiss.IndexHNSW):
            return f"{self.kind} (M {_hnsw_m(inner)})"
        return self.kind

    @property
    def dimension(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def empty(cls, dimension: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)), "flat")

    @classmethod
    def build(
        cls,
        family: Family,
        sq8: bool,
        ids: np.ndarray,
        vectors: np.ndarray,
        policy: IndexPolicy | None = None,
        *,
        dimension: int | None = None,
        progress: Progress | None = None,
    ) -> VectorIndex:
        """A new index of the given type holding ``vectors`` under ``ids`` (trained on them)."""
        policy = policy or IndexPolicy()
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        d = int(vecs.shape[1]) if vecs.ndim == 2 and vecs.shape[1] else int(dimension or 0)
        n = len(vecs)
        sq8 = sq8 and n >= policy_mod.SQ_MIN_TRAIN
        qt: Any = faiss.ScalarQuantizer.QT_8bit
        ip = faiss.METRIC_INNER_PRODUCT
        if family == "ivf" and n > 0:
            nlist = ivf_nlist(n)
            quantizer = faiss.IndexFlatIP(d)
            inner: Any = (
                faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, qt, ip)
                if sq8
                else faiss.IndexIVFFlat(quantizer, d, nlist, ip)
            )
            inner.cp.niter = IVF_NITER
            inner.cp.seed = 1234
            inner.cp.min_points_per_centroid = 1  # small indexes: no "too few points" warning
            inner.set_direct_map_type(_hashtable())
            index = inner  # ids live in the lists: no IndexIDMap2 (its removal assumes flat)
            kind = "ivf-sq8" if sq8 else "ivf"
        elif family == "hnsw":
            inner = (
                faiss.IndexHNSWSQ(d, qt, policy.hnsw_m, ip)
                if sq8
                else faiss.IndexHNSWFlat(d, policy.hnsw_m, ip)
            )
            inner.hnsw.efConstruction = policy.hnsw_ef_construction
            index = faiss.IndexIDMap2(inner)
            kind = "hnsw-sq8" if sq8 else "hnsw"
        else:
            inner = faiss.IndexScalarQuantizer(d, qt, ip) if sq8 else faiss.IndexFlatIP(d)
            index = faiss.IndexIDMap2(inner)
            kind = "flat-sq8" if sq8 else "flat"
        if not inner.is_trained:
            if progress:
                progress("training vector index", 0, 1)
            per = IVF_TRAIN_PER_LIST * max(1, getattr(inner, "nlist", 1))
            sample = vecs
            if n > max(per, 50_000):
                rng = np.random.default_rng(0)
                sample = vecs[np.sort(rng.choice(n, max(per, 50_000), replace=False))]
            inner.train(sample)
            if progress:
                progress("training vector index", 1, 1)
        out = cls(index, kind)
        out.configure(policy)
        out.add(np.asarray(ids, dtype=np.int64), vecs, progress=progress)
        return out

    def configure(self, policy: IndexPolicy) -> None:
        """Set the search-time parameters (lists probed, graph breadth) from the config."""
        inner = _inner(self.index)
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = max(1, min(policy.ivf_nprobe, int(inner.nlist)))
        elif isinstance(inner, faiss.IndexHNSW):
            inner.hnsw.efSearch = policy.hnsw_ef_search

    def copy(self) -> VectorIndex:
        return VectorIndex(faiss.clone_index(self.index), self.kind)

    def wanted(self, policy: IndexPolicy) -> tuple[Family, bool] | None:
        """The (family, sq8) this index should be rebuilt as under ``policy``; None: keep it."""
        n = len(self)
        family = policy.family(n, self.family)
        sq8 = policy.sq8(n)
        if family == "ivf" and n == 0:
            family = "flat"  # nothing to train on yet
        if family != self.family or (sq8 != self.quantized and (sq8 or n > 0)):
            return family, sq8
        if family == "ivf":
            ratio = ivf_nlist(n) / max(1, self.nlist)
            if ratio >= 2 or ratio <= 0.5:
                return family, sq8
        return None

    def adapt(self, policy: IndexPolicy, progress: Progress | None = None) -> VectorIndex:
        """This index, or a rebuilt one of the type ``policy`` wants for its size."""
        want = self.wanted(policy)
        if want is None:
            self.configure(policy)
            return self
        family, sq8 = want
        log.info("rebuilding the vector index as %s%s", family, "-sq8" if sq8 else "")
        ids, vecs = self.all_vectors()
        return VectorIndex.build(
            family, sq8, ids, vecs, policy, dimension=self.dimension, progress=progress
        )

    # -- changes -----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray, progress: Progress | None = None) -> None:
        if len(ids) == 0:
            return
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.ndim != 2 or vecs.shape[1] != self.dimension:
            raise ValueError(f"expected vectors of dimension {self.dimension}, got {vecs.shape}")
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        total = len(ids)
        for i in range(0, total, ADD_BATCH):
            self.index.add_with_ids(vecs[i : i + ADD_BATCH], ids[i : i + ADD_BATCH])
            if progress and total > ADD_BATCH:
                progress("vector index", min(i + ADD_BATCH, total), total)

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if self.family != "hnsw":
            return int(self.index.remove_ids(ids))  # type: ignore[arg-type]
        # HNSW graphs cannot drop nodes: rebuild from the vectors that stay
        have, vecs = self.all_vectors()
        keep = ~np.isin(have, ids)
        removed = int(len(have) - keep.sum())
        if removed:
            log.info("rebuilding the HNSW graph without %d vectors", removed)
            inner = _inner(self.index)
            policy = IndexPolicy(
                hnsw_m=_hnsw_m(inner),
                hnsw_ef_construction=inner.hnsw.efConstruction,
                hnsw_ef_search=inner.hnsw.efSearch,
            )
            new = VectorIndex.build(
                "hnsw", self.quantized, have[keep], vecs[keep], policy, dimension=self.dimension
            )
            self.index, self.kind = new.index, new.kind
        return removed

    # -- reading -----------------------------------------------------------------------------
    def ids(self) -> np.ndarray:
        if isinstance(self.index, faiss.IndexIDMap2):
            return faiss.vector_to_array(self.index.id_map).astype(np.int64)
        inner = _inner(self.index)
        lists = inner.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(inner.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (id, vector) stored; exact for float indexes, decoded for 8-bit ones."""
        n = len(self)
        if n == 0:
            return np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32)
        if isinstance(self.index, faiss.IndexIDMap2):
            vecs = _inner(self.index).reconstruct_n(0, n)
            return self.ids(), np.ascontiguousarray(vecs, dtype=np.float32)
        ids = self.ids()
        return ids, np.ascontiguousarray(self.index.reconstruct_batch(ids), dtype=np.float32)

    def damaged_vectors(self, batch: int = 16_384) -> tuple[int, int | None]:
        """Stored vectors that are not finite unit vectors, as (count, lowest id): what garbled
        bytes inside the file look like when every id is still right. Every embedder stores
        L2-normalised vectors; 8-bit ones decode to norms within a few percent of 1."""
        n = len(self)
        if n == 0:
            return 0, None
        tol = 0.5 if self.quantized else 0.1
        ids = self.ids()
        flat = isinstance(self.index, faiss.IndexIDMap2)
        inner: Any = _inner(self.index)
        count, first = 0, None
        for i in range(0, n, batch):
            m = min(batch, n - i)
            vecs = (
                inner.reconstruct_n(i, m) if flat else self.index.reconstruct_batch(ids[i : i + m])
            )
            vecs = np.asarray(vecs, dtype=np.float64)
            with np.errstate(all="ignore"):
                norms = np.linalg.norm(vecs, axis=1)
            bad = ~np.isfinite(norms) | (np.abs(norms - 1.0) > tol)
            if bad.any():
                count += int(bad.sum())
                lowest = int(ids[i : i + m][bad].min())
                first = lowest if first is None else min(first, lowest)
        return count, first

    def search(
        self, query: np.ndarray, k: int, allowed: Allowed | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` nearest passages; with ``allowed``, only among those (see :meth:`_scoped`)."""
        if len(self) == 0:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if allowed is not None:
            return self._scoped(q, k, allowed)
        with single_thread():
            scores, ids = self.index.search(q, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def _scoped(self, q: np.ndarray, k: int, allowed: Allowed) -> list[tuple[int, float]]:
        """Search inside a scope. A scope of at most ``SCOPE_EXACT_MAX`` passages is searched
        exactly over its own vectors (read once per generation: a 1,000-passage scope is a
        0.1 ms product, faster than the whole index and exact even where the index is IVF);
        a larger one through a FAISS ``IDSelectorBatch`` in the search parameters, so FAISS
        scores only the scope's vectors (IVF: in the lists it probes)."""
        if not len(allowed):
            return []
        if len(allowed) <= SCOPE_EXACT_MAX:
            ids, vecs = allowed.derived("faiss-vectors", lambda: self._vectors_of(allowed.ids))
            if len(ids):
                scores = vecs @ q.reshape(-1)
                n = min(k, len(ids))
                top = np.argpartition(-scores, n - 1)[:n] if n < len(ids) else np.arange(len(ids))
                top = top[np.lexsort((ids[top], -scores[top]))]
                return [(int(ids[i]), float(scores[i])) for i in top]
            return []
        params = allowed.derived("faiss-params", lambda: self._selector_params(allowed.ids))
        with single_thread():
            scores, found = self.index.search(q, min(k, len(allowed)), params=params[0])
        return [(int(i), float(s)) for i, s in zip(found[0], scores[0], strict=True) if i >= 0]

    def _vectors_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored vectors of ``ids`` (those in this index), as (ids, matrix)."""
        present = ids[np.isin(ids, self.ids())] if len(ids) else ids
        if not len(present):
            return present, np.zeros((0, self.dimension), np.float32)
        vecs = self.index.reconstruct_batch(present)
        return present, np.ascontiguousarray(vecs, dtype=np.float32)

    def _selector_params(self, ids: np.ndarray) -> tuple[Any, Any]:
        """Search parameters that let FAISS see only ``ids`` (with the selector, which must
        outlive them: SWIG keeps no reference)."""
        keep = np.ascontiguousarray(ids, dtype=np.int64)
        f: Any = faiss  # the selector API is not in faiss's stubs
        sel = f.IDSelectorBatch(len(keep), f.swig_ptr(keep))
        inner = _inner(self.index)
        if isinstance(inner, faiss.IndexIVF):
            params = f.SearchParametersIVF(sel=sel, nprobe=int(inner.nprobe))
        elif isinstance(inner, faiss.IndexHNSW):
            params = f.SearchParametersHNSW(sel=sel, efSearch=int(inner.hnsw.efSearch))
        else:
            params = f.SearchParameters(sel=sel)
        return params, (sel, keep)

    def scores_for(self, query: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Exact inner products of the query with the stored vectors of ``ids``."""
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        vecs = self.index.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return (vecs @ query.astype(np.float32).reshape(-1)).astype(np.float32)

    def search_many(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        q = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = self.index.search(q, min(k, len(self)))
        return [
            [(int(i), float(s)) for i, s in zip(row_i, row_s, strict=True) if i >= 0]
            for row_i, row_s in zip(ids, scores, strict=True)
        ]

    # -- files -------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dimension: int, policy: IndexPolicy | None = None) -> VectorIndex:
        try:
            index = faiss.read_index(str(path))
        except Exception as e:  # faiss raises RuntimeError with C++ text
            raise IndexCorruptError(
                f"the vector index {path} is unreadable ({str(e).splitlines()[0][:120]}); "
                "run `newsdesk reindex` to rebuild it from the stored articles"
            ) from e
        if index.d != dimension:
            raise IndexCorruptError(
                f"the vector index {path} has dimension {index.d}, expected {dimension}; "
                "run `newsdesk reindex`"
            )
        inner = _inner(index)
        if isinstance(inner, faiss.IndexIVF) and inner.direct_map.type != _hashtable():
            inner.set_direct_map_type(_hashtable())
        out = cls(index)
        out.configure(policy or IndexPolicy())
        return out
