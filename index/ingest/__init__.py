"""ingest: see README "Architecture"."""
