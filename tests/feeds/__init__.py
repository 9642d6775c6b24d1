"""Tests of feed subscriptions and sync."""
