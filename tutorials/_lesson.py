"""What every lesson shares: the project root on ``sys.path``, fast mode, the figure folder, MNIST images.

A lesson starts with::

    from _lesson import Lesson
    L = Lesson("01_one_neuron")      # figures go to tutorials/figures/01_one_neuron/ (or $TUTORIAL_OUT/...)
    ...
    L.save(fig, "membrane")          # writes membrane.png there and prints its path

``TUTORIAL_FAST=1`` (``L.fast``) asks a lesson to shrink its work so that it runs in seconds (CI does
this); ``TUTORIAL_OUT`` moves the figure folder.  Lessons run as scripts (``python tutorials/01_...py``),
as notebooks (jupytext, VS Code, Jupyter: the ``# %%`` cells) and from any working directory.
"""
from __future__ import annotations

import os
import sys
import warnings

HERE = os.path.dirname(os.path.realpath(__file__))  # realpath: also when reached through a link (docs/tutorials)
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import matplotlib  # noqa: E402


#: How a lesson reads its fast mode (``L.fast``, or a ``FAST`` of its own); a lesson without either runs
#: the same in both modes, and its site page must not say it ran in the fast mode.
FAST_MODE_USE = r"\bFAST\b|\bL\.fast\b"


def has_fast_mode(path) -> bool:
    """Whether the lesson script at ``path`` has a fast mode (reads :data:`FAST_MODE_USE`)."""
    import re

    with open(path, encoding="utf-8") as fh:
        return re.search(FAST_MODE_USE, fh.read()) is not None


def in_notebook() -> bool:
    """Whether the lesson runs inside an IPython kernel (Jupyter, VS Code notebooks), not as a script."""
    return "ipykernel" in sys.modules


# A script without a display draws off-screen; a notebook keeps its own (inline) backend.
if not in_notebook() and not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import numpy as np  # noqa: E402

# tqdm's notebook bar needs ipywidgets; without them it falls back to the text bar (what a lesson shows),
# and the warning that says so is noise on every lesson page that trains.
warnings.filterwarnings("ignore", message="IProgress not found")


class Lesson:
    """The lesson's settings: ``fast`` (bool), ``out`` (its figure folder), ``root`` (the project folder)."""

    def __init__(self, name: str):
        self.name = name
        self.root = ROOT
        self.fast = os.environ.get("TUTORIAL_FAST", "") not in ("", "0")
        base = os.environ.get("TUTORIAL_OUT") or os.path.join(HERE, "figures")
        self.out = os.path.join(base, name)
        os.makedirs(self.out, exist_ok=True)
        self.saved: list[str] = []

    def path(self, *parts: str) -> str:
        """A path inside the project (``L.path("configs", "MNIST_CNN.yaml")``)."""
        return os.path.join(self.root, *parts)

    def save(self, fig, name: str) -> str | None:
        """Save ``fig`` as ``<out>/<name>.png`` (dpi 120, tight) and close it.

        As a script: prints and returns the path.  In a notebook (and on the documentation site) the figure
        is shown inline instead, and nothing is printed or returned, so a cell's output is the figure alone.
        """
        import matplotlib.pyplot as plt

        path = os.path.join(self.out, f"{name}.png")
        fig.savefig(path, dpi=120, bbox_inches="tight")
        self.saved.append(path)
        if in_notebook():
            from IPython.display import display

            display(fig)
            plt.close(fig)
            return None
        plt.close(fig)
        print(f"wrote {self.shown(path)}")
        return path

    def show(self, path: str) -> str | None:
        """Record a PNG that a library function wrote itself; in a notebook, show it inline (returns None
        there, so the cell shows the picture alone), else return the path."""
        self.saved.append(path)
        if in_notebook():
            from IPython.display import Image, display

            display(Image(filename=path))
            return None
        return path

    def explore(self, x, g, params, *, rule: str = "final", inter: bool = True, intra: bool = True,
                warmup: str = "per-neuron", rate_threshold: float | None = None) -> str:
        """A link that opens one neuron of the lesson on the site's "Explore one neuron" page.

        ``x`` and ``g`` are the neuron's input current and ``dL/da``, shape ``(T,)`` or ``(T, 1, ...)`` of
        one neuron; ``params`` its :class:`reference.params.NeuronParams`; the keywords are the page's
        switches.  The page's whole state is in the part after ``#`` (docs/explore.md).  In a notebook (and
        on the site) shows the link; as a script prints it.  Returns the address relative to the site's root.
        """
        from urllib.parse import urlencode

        from reference.paper2020 import check_rate_threshold

        x, g = (np.asarray(v, np.float64).reshape(len(v), -1)[:, 0] for v in (x, g))
        if x.shape != g.shape or not 2 <= len(x) <= 20:
            raise ValueError(f"x and g must hold one neuron's T = 2..20 steps, got {x.shape} and {g.shape}")
        state = {"T": len(x), "tau_m": params.tau_m, "tau_s": params.tau_s, "threshold": params.threshold,
                 "rule": rule, "warmup": warmup, "rate_threshold": check_rate_threshold(rate_threshold), "input": "current",
                 "inter": int(inter), "intra": int(intra),
                 "x": ",".join(repr(float(v)) for v in x), "g": ",".join(repr(float(v)) for v in g)}  # exact
        address = "explore.html#" + urlencode(state, safe=",")
        if in_notebook():
            from IPython.display import HTML, display

            display(HTML(f'<p><a class="explore-link" href="../{address}">Explore this neuron</a>: the same numbers, '
                         f'live (move its input, its error, its constants)</p>'))
        else:
            print(f"explore this neuron live: {address} on the documentation site (make docs)")
        return address

    def shown(self, path: str) -> str:
        """``path`` as a lesson prints it: relative to the project when inside it (no machine's own folders)."""
        inside = os.path.abspath(path).startswith(self.root + os.sep)
        return os.path.relpath(path, self.root) if inside else path

    def done(self) -> None:
        """Print where the lesson's figures are (call it last)."""
        n = len(self.saved)
        print(f"{n} figure{'s' * (n != 1)} in {self.shown(self.out)}")


def mnist_images(n: int, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` (<= 300) real MNIST images of the small fixture the tests use, no download needed.

    Returns ``x`` float32 ``(n, 1, 28, 28)``, normalised as the authors do ((pixel/255 - 0.1307)/0.3081,
    :func:`reference.app.data.normalise`, the same as training), and ``labels`` int64 ``(n,)``.  For the full
    dataset use ``reference.app.train.load_split``.
    """
    from reference.app.data import normalise

    with np.load(os.path.join(ROOT, "tests", "data", "mnist_fixture.npz")) as d:
        images, labels = d[f"{split}_images"], d[f"{split}_labels"]
    if not 0 < n <= len(images):
        raise ValueError(f"n must be in 1..{len(images)} (the fixture's size), got {n}")
    return normalise(images[:n], "MNIST"), labels[:n].astype(np.int64)
