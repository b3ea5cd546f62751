"""The demo: a simulator that plays the province's agencies through the real data-sharing API."""
