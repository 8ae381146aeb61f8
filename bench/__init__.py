"""Benchmarks: each scenario starts the servers it needs and prints its figures."""
