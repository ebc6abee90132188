"""Regenerate every figure: ``python figures/make_all.py [--fast] [--only fig3] [--rerun] [--check]``.

Full mode redraws from the cached runs in seconds (training only what is missing); ``--fast`` runs every
script end to end on tiny budgets (CI), writing to ``figures/_fast/``.  ``--check`` trains nothing: it
recomputes every figure's data from the committed runs (``results/``, ``figures/runs/``) into a scratch
folder and exits 1 naming each figure whose committed ``figures/data/`` file differs (stale); CI runs it
(``tests/test_figures.py``, integration tier).
Figure 5's CSV is not derived data but the recording of its training run itself, so it has nothing to check.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import filecmp
import os
import shutil
import sys
import tempfile
import time

SCRIPTS = ["fig1_dependencies", "fig2_learning_curves", "fig3_time_steps", "fig4_ablation", "fig5_gradient_flow",
           "fig6_tables", "fig7_variants", "fig8_loss_rise", "fig9_layer_switch", "fig10_mlp_differences"]
#: Scripts whose data file is a recording, not derived from committed runs (see the module docstring).
NOT_CHECKED = {"fig5_gradient_flow"}
HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="tiny budgets, output in figures/_fast/")
    ap.add_argument("--only", action="append", help="run only scripts whose name starts with this (repeatable)")
    ap.add_argument("--rerun", action="store_true", help="retrain cached runs instead of reading them")
    ap.add_argument("--check", action="store_true",
                    help="train nothing; exit 1 if a committed figures/data file differs from its recomputation")
    args = ap.parse_args(argv)
    if args.check and (args.fast or args.rerun):
        ap.error("--check compares the committed full-mode data: no --fast, no --rerun")
    if args.fast:
        os.environ["FIGURES_FAST"] = "1"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    chosen = [s for s in SCRIPTS if not args.only or any(s.startswith(o) for o in args.only)]
    if not chosen:
        print(f"no script matches {args.only}; scripts: {SCRIPTS}", file=sys.stderr)
        return 2
    if args.check:
        return check(chosen)
    for name in chosen:
        t0 = time.perf_counter()
        mod = _figure_module(name)
        kwargs = {"rerun": args.rerun} if "rerun" in inspect.signature(mod.main).parameters else {}
        mod.main(**kwargs)
        print(f"[{name}] {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


def _figure_module(name: str):
    """The module of figure script ``name`` (``figures/<name>.py``), also when this file was imported from
    elsewhere (a test) rather than run as a script, whose folder Python then puts on ``sys.path``."""
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    return importlib.import_module(name)


def check(chosen: list[str], committed_dir: str | None = None) -> int:
    """Recompute each chosen figure's data into a scratch folder and compare it with ``figures/data/``
    (or ``committed_dir``); returns 0 when all are equal, byte for byte, else 1."""
    import matplotlib

    matplotlib.use("Agg")
    scratch = tempfile.mkdtemp(prefix="figures-check-")
    saved = {k: os.environ.get(k) for k in ("FIGURES_OUT", "FIGURES_CHECK")}
    os.environ.update(FIGURES_OUT=scratch, FIGURES_CHECK="1")
    stale = []
    try:
        for name in chosen:
            if name in NOT_CHECKED:
                print(f"[{name}] not checked: its data file is the recording of its own training run")
                continue
            _figure_module(name).main()
            made = sorted(f for f in os.listdir(os.path.join(scratch, "data")) if f.startswith(name + "."))
            for f in made:
                committed = os.path.join(committed_dir or os.path.join(HERE, "data"), f)
                same = os.path.exists(committed) and filecmp.cmp(committed, os.path.join(scratch, "data", f), shallow=False)
                print(f"[{name}] data/{f}: {'current' if same else 'STALE'}", flush=True)
                if not same:
                    stale.append(f"{name} (data/{f})")
            if not made:
                stale.append(f"{name} (wrote no data file)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    if stale:
        print("stale: " + ", ".join(stale) + "; redraw with python figures/make_all.py --only <name> and commit",
              file=sys.stderr)
        return 1
    print(f"every checked figure's data is current ({len(chosen) - len(NOT_CHECKED & set(chosen))} figures)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
