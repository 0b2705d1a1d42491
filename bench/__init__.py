"""Benchmarks that print JSON; goals are measured here, never asserted on wall-clock time in tests."""
