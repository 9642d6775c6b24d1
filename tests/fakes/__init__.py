"""Loopback fakes and shared helpers of the tests: Discord, OpenAI-compatible, feeds, HTTP."""
