"""p1_ingest."""
