"""Notifications: in-app with unread counts, e-mail over SMTP, signed webhooks with retries and a dead-letter list."""
