"""The streaming service: ingest, assign, name, recompute, and the read API."""
