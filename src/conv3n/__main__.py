"""`python -m conv3n` runs the command line."""

from conv3n.cli import main

main()
