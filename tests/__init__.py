"""syndicator test suite."""
