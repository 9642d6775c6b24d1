"""Commands for maintainers that sit beside the faces: eval, bench, migrate, train-reranker."""
