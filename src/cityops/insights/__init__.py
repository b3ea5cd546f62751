"""Decision support: plan vs actual with a projection, rankings and composite indices, anomalies and trends."""
