"""`python -m tandem.cli`: the same app as the `tandem` command."""

from tandem.cli import main

main()
