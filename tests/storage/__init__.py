"""Tests of vector-store backends (Milvus; FAISS runs through every engine test)."""
