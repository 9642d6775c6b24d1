"""written: see README "Architecture"."""
