"""Inputs to Documents: files and folders, web pages, RSS/Atom feeds, PDF/DOCX/Markdown, with the
safe HTTP fetcher (addresses, decode, fetch). No index access here."""
