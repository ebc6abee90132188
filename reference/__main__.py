"""``python -m reference ...``: see :mod:`reference.app.cli`."""
import sys

try:
    from .app.cli import main
except KeyboardInterrupt:  # Ctrl-C while NumPy and the rest load: nothing has been touched yet
    sys.stderr.write("\ninterrupted\n")
    sys.exit(130)  # reference.app.cli.EXIT_INTERRUPTED, which could not be imported

sys.exit(main())
