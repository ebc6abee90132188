"""Regenerate every figure: ``python figures/make_all.py [--fast] [--only fig3] [--rerun]``.

Full mode redraws from the cached runs in seconds (training only what is missing); ``--fast`` runs every
script end to end on tiny budgets (CI), writing to ``figures/_fast/``.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import time

SCRIPTS = ["fig1_dependencies", "fig2_learning_curves", "fig3_time_steps", "fig4_ablation", "fig5_gradient_flow",
           "fig6_tables", "fig7_variants", "fig8_loss_rise", "fig9_layer_switch", "fig10_mlp_differences"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="tiny budgets, output in figures/_fast/")
    ap.add_argument("--only", action="append", help="run only scripts whose name starts with this (repeatable)")
    ap.add_argument("--rerun", action="store_true", help="retrain cached runs instead of reading them")
    args = ap.parse_args(argv)
    if args.fast:
        os.environ["FIGURES_FAST"] = "1"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    chosen = [s for s in SCRIPTS if not args.only or any(s.startswith(o) for o in args.only)]
    if not chosen:
        print(f"no script matches {args.only}; scripts: {SCRIPTS}", file=sys.stderr)
        return 2
    for name in chosen:
        t0 = time.perf_counter()
        mod = importlib.import_module(name)
        kwargs = {"rerun": args.rerun} if "rerun" in inspect.signature(mod.main).parameters else {}
        mod.main(**kwargs)
        print(f"[{name}] {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
