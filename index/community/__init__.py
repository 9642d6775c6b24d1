"""Community state of the Discord face (votes, question log, forum bookkeeping, scope bindings):
``<data_dir>/community.sqlite3``, apart from the index, which reindex and generations rebuild
and which may live on Milvus. Each module owns its tables (``CREATE TABLE IF NOT EXISTS``)."""
