"""feeds: see README "Architecture"."""
