"""The Milvus backend (``[store] backend = "milvus"``): one index shared by many processes.

``collections``  the connection, collection names and schemas, creation that rides out races,
                 query and scan helpers
``lease``        the writer lease (one writer at a time across processes and machines)
``vectors``      :class:`MilvusVectors`, the vectors of one generation as a question searches them
``store``        :class:`MilvusStore`, the read-side Store API (meta, articles, passages, hits)
``backend``      :class:`MilvusBackend`: generations, publishing, recovery and verification

Importing this package imports pymilvus: :func:`index.storage.open_backend` does it only when
``backend = "milvus"`` is configured.
"""

from index.storage.milvus.backend import MilvusBackend

__all__ = ["MilvusBackend"]
