"""The time-series store: ingest (validate, normalise, deduplicate, write in batches) and queries."""
