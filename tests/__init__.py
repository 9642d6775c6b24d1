"""newsdesk tests: one folder per wing of the code, the fakes they share in tests/fakes/."""
