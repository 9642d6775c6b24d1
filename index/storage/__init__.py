"""storage: see README "Architecture"."""
