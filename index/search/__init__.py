"""search: see README "Architecture"."""
