"""Tests of the newsdesk command line, its config, README examples, deployment."""
