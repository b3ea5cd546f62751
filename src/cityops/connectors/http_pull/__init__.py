"""http_pull: a scheduled GET of JSON from an agency's REST endpoint (LGSP / iGate style) — `schema.py` (settings),
`client.py` (the protocol: GETs, paging, authentication, limits; no cityops imports) and `connector.py` (its pages
mapped to observations, its errors to ConnectorError)."""
