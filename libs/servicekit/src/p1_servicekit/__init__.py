"""p1_servicekit."""
