"""Tests of sources, extraction and safe fetching."""
