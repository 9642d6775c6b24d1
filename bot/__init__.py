"""newsdesk's Discord face: a thin layer over ``index.pipeline.Pipeline``."""
