"""Community state kept beside the index, in ``<data_dir>/community.sqlite3``: what the people
of a Discord server set or did (channel scope bindings, ...), as opposed to the articles.

It is not in the index database: the index is rebuilt by ``reindex`` and may live in Milvus,
while this state must survive both. Each module owns its tables in the one file
(``CREATE TABLE IF NOT EXISTS``), opened in WAL mode with short transactions.
"""
