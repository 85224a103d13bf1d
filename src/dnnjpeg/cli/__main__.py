"""``python -m dnnjpeg.cli``: the command line."""

from dnnjpeg.cli import main

main()
