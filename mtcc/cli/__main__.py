"""`python -m mtcc.cli`: the same as the `mtcc` console script."""
from .app import main

main()
