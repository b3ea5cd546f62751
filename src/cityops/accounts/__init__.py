"""Users, roles, agencies, API keys, sessions and the audit log."""
