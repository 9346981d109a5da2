"""Example contenders to copy.

``python -m benchmarks --strategy benchmarks.examples.bisect:count`` races the first.
"""
