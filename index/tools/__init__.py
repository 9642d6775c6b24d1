"""tools: see README "Architecture"."""
