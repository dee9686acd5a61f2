"""p1_contracts."""
