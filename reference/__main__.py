"""``python -m reference ...``: see :mod:`reference.app.cli`."""
import signal
import sys

signal.signal(signal.SIGTERM, signal.default_int_handler)  # from here on SIGTERM is a Ctrl-C (exit 130)
try:
    from .app.cli import main
except KeyboardInterrupt:  # Ctrl-C while NumPy and the rest load: nothing has been touched yet
    sys.stderr.write("\ninterrupted\n")
    sys.exit(130)  # reference.app.cli.EXIT_INTERRUPTED, which could not be imported

code = main()
# The work is done and said: a signal from now on is ignored, and the process ends without Python's
# shutdown, in which a signal reaching one of NumPy's or Numba's threads killed it silently with 130.
for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, signal.SIG_IGN)
from .app.atomic import end_process  # noqa: E402  (after the guarded import above)

end_process(code)
