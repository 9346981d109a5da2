"""``python -m convstats``: the command line."""

from convstats.cli import main

main()
