"""Citizen feedback (phản ánh, kiến nghị): reports from the people, routed, handled as incidents, answered on
time, over a public form and Open311 GeoReport v2."""
