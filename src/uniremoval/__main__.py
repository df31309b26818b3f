"""`python -m uniremoval ...` runs the command line (same as the `uniremoval` script)."""
from .cli import main

main()
