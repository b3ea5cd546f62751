"""Incidents: work for people, with an owner agency, assignees, a deadline, an SOP checklist and a full trail."""
