"""p1_schema: what ingest and query share besides the contract — the database schema (migrations and
their runner, the rollup SQL, a bulk loader for tests and benchmarks) and the Redis layout."""
