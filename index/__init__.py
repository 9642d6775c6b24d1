"""newsdesk engine: ingest, chunk, embed, store, retrieve and answer. Never imports discord."""

__version__ = "0.1.0"
