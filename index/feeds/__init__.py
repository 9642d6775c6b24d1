"""Subscriptions kept in sync with the index: the data (models), all SQL of subscriptions.db
(store), and the sync rounds and announcement queue (engine), through the pipeline facade."""
