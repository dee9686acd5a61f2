"""p1_config: what every p1 process (ingest, query and the edge) does the same way at start-up: reading
its settings and reporting their errors, logging, keeping secrets out of output. It depends only on
pydantic-settings, so that the edge can use it on the Pi without the services' web and database stack."""
