"""The command line, ``pyro-vae``: :mod:`.parser` (the commands and their options),
:mod:`.commands` (one function per command, calling its job) and :mod:`.dispatch` (the entry
point: errors to messages and exit statuses). ``python -m pyro_vae`` runs :func:`main`."""

from .dispatch import main
from .parser import build_parser

__all__ = ["build_parser", "main"]
