"""``python -m reference ...``: see :mod:`reference.app.cli`."""
import signal
import sys

signal.signal(signal.SIGTERM, signal.default_int_handler)  # from here on SIGTERM is a Ctrl-C (exit 130)
try:
    from .app.cli import main
except KeyboardInterrupt:  # Ctrl-C while NumPy and the rest load: nothing has been touched yet
    sys.stderr.write("\ninterrupted\n")
    sys.exit(130)  # reference.app.cli.EXIT_INTERRUPTED, which could not be imported

sys.exit(main())
