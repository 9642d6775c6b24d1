"""Tests of performance budgets."""
