"""Tests of the Discord face against tests/fakes/discord/."""
