"""Tables of this package (to be written)."""
