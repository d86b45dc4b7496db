"""The old home of the command line, kept so that ``python -m pyro_vae.app.cli`` and existing
imports work: the command line is :mod:`pyro_vae.cli`."""

import sys

from ..cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
