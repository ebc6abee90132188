"""``python -m reference ...`` and the ``tsslbp`` command: :func:`run` (the commands are in
:mod:`reference.app.cli`)."""
import sys


def run() -> None:
    """Run the command of ``sys.argv`` as the program, and end the process with its exit code.

    A Ctrl-C or SIGTERM that comes while the package, NumPy and the rest load is held until they have
    loaded (:func:`reference._hold_signals`), and then ends the program with one line and exit 130.  Raised in the middle of an import it gave a traceback, or
    was turned by NumPy into an ImportError, or was dropped ("Exception ignored") and the command went on.
    From then on SIGTERM is a Ctrl-C, until the command installs its own handlers
    (:func:`reference.app.cli._signals_for`)."""
    from . import _hold_signals

    held = _hold_signals()  # (held already since the package loaded, when this process is the program)
    try:
        import signal

        from .app.atomic import end_process
        from .app.cli import EXIT_INTERRUPTED, main
    except BaseException:
        if held:  # the import failed because the signal broke into it (a C extension's own import)
            _end_interrupted()
        raise
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.default_int_handler)
        if held:  # checked after the handlers are in place, so that no signal falls between the two
            raise KeyboardInterrupt
        code = main()
    except KeyboardInterrupt:  # before the command's own handlers, or between them and the end of main
        print("\ninterrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    # The work is done and said: a signal from now on is ignored, and the process ends without Python's
    # shutdown, in which a signal reaching one of NumPy's or Numba's threads killed it silently with 130.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    end_process(code)


def _end_interrupted() -> None:
    import os

    os.write(2, b"\ninterrupted\n")
    os._exit(130)  # reference.app.cli.EXIT_INTERRUPTED, which could not be imported


if __name__ == "__main__":
    run()
