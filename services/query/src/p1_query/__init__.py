"""p1_query."""
