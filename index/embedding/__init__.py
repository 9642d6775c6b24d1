"""embedding: see README "Architecture"."""
