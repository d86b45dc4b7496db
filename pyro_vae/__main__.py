"""``python -m pyro_vae`` (and ``torchrun -m pyro_vae``): the command line.

``python -m`` puts the current directory first on ``sys.path``; it is taken off here, so that
a module lying in the current directory (a run directory from someone else, say) cannot shadow
one the program imports later. Parts named ``module:Class`` are still found there (the registry
looks in the current directory, never inside a run directory being read). Modules imported
before this line ran (``pyro_vae``'s own dependencies) cannot be protected this way: in a
directory you do not trust, use the ``pyro-vae`` command, or ``python -P -m pyro_vae``.
"""

import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402

sys.exit(main())
