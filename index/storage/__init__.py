"""Where passages, vectors and article text live, one generation at a time: the Backend protocol
(base), its factory, the built-in local backend (SQLite + FAISS + BM25 files) and Milvus. The
keyword (lexical) and title (titles) indexes are storage structures too: search reads them."""
