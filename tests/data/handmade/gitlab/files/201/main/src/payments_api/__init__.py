"""Acme payments API."""
