"""Community state kept beside the index: what members asked and how they rated the answers.

Its own SQLite file in the data dir (``community.sqlite3``), never the index DB: the index is
rebuilt by ``reindex`` and may live on Milvus, while votes and logs must survive both. Each
module opens that file with its own tables (``CREATE TABLE IF NOT EXISTS``).
"""
