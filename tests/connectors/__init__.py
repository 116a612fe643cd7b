"""Connector tests: each against a local server speaking the platform's API."""
