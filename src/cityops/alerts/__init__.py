"""Alerts: rules firing on observations or on a feed's health, de-duplicated, with their history."""
