"""Benchmarks of the room stores: ``python -m benchmarks --help``."""
