"""Subsystem boards: every monitored item of one domain, trend, by commune, plan vs actual, drill-down."""
