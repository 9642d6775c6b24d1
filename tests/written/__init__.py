"""Tests of optional LLM answers and their verification."""
