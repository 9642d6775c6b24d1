"""A question against one snapshot: retrieve (dense + BM25), fuse, merge, then choose the quoted
sentence (answer + the learned reranker) or abstain; small talk and one-sentence summaries."""
