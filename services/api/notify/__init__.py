"""Notifications: targets and rules (the api's), their fan-out and delivery."""
