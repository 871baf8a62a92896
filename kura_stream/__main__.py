"""`python -m kura_stream` runs the CLI."""

from kura_stream.cli import main

main()
