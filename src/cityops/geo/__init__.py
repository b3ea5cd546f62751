"""Administrative units (2025 two-level structure), places and boundaries."""
