"""storage.milvus: see README "Architecture"."""
