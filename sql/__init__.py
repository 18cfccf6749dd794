"""Numbered SQL migrations and the migration runner (`xorj migrate`)."""
