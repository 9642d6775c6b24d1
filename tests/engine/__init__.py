"""Tests of the engine: pipeline, answers, retrieval, chunking, reranker, embedders, titles."""
