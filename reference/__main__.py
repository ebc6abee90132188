"""``python -m reference ...``: see :mod:`reference.app.cli`."""
import sys

from .app.cli import main

sys.exit(main())
