"""`python -m hands`: the `hands` command."""

from hands.cli import main

main()
