"""Domains, indicators, targets and thresholds; the default catalog as data files."""
