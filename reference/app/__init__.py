"""The application: real datasets, the run folder, the training loop, summaries, diagnostics, figures and the
command line (``python -m reference``).  It drives the algorithm (the modules directly below
:mod:`reference`) through an engine of :mod:`reference.engines`; nothing below imports it."""
