"""Crash tests: the daemon killed at random, nothing lost, nothing duplicated."""
