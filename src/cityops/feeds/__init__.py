"""Feeds: agreed flows of data from one agency, with what they supply."""
