"""Data health: trust scores (đúng, đủ, sạch, sống) of feeds, indicators and agencies, and the page that ranks them."""
