"""p1_servicekit: what the ingest and query services share, and only that."""
