"""Community state kept beside the index: what members asked, how they rated the answers, and
which channels are answered from which articles (scope bindings).

Its own SQLite file in the data dir (``community.sqlite3``), never the index DB: the index is
rebuilt by ``reindex`` and may live on Milvus, while votes, logs and bindings must survive both.
Each module opens that file with its own tables (``CREATE TABLE IF NOT EXISTS``).
"""
