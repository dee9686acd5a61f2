"""p1_edge."""
