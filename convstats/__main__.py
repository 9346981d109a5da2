"""``python -m convstats``: the command line, which lives with the adapters it wires."""

from convstats_adapters.cli import main

main()
