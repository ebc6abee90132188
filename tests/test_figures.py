"""Every figure script runs end to end in fast mode and writes a non-empty PNG and CSV."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT, dataset_missing

SCRIPTS = ["fig1_dependencies", "fig2_learning_curves", "fig3_time_steps", "fig4_ablation", "fig5_gradient_flow",
           "fig6_tables", "fig7_variants", "fig8_loss_rise", "fig9_layer_switch", "fig10_mlp_differences"]


@pytest.mark.integration
def test_make_all_fast(tmp_path):
    why = dataset_missing("FashionMNIST")
    if why:
        pytest.skip(f"Fashion-MNIST is not available offline here ({why}); CI installs dataset-fashion-mnist")
    env = dict(os.environ, FIGURES_OUT=str(tmp_path), TSSLBP_OFFLINE="1")
    res = subprocess.run([sys.executable, os.path.join(ROOT, "figures", "make_all.py"), "--fast"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for name in SCRIPTS:
        png, csv = tmp_path / f"{name}.png", tmp_path / "data" / f"{name}.csv"
        assert png.stat().st_size > 10_000, name
        assert len(csv.read_text().splitlines()) >= 2, name
    # fast mode trained its small runs in the given folder, never in figures/runs
    assert (tmp_path / "runs" / "T5" / "metrics.csv").exists()


def test_make_all_rejects_unknown_script(capsys):
    sys.path.insert(0, os.path.join(ROOT, "figures"))
    try:
        import make_all
    finally:
        sys.path.pop(0)
    assert make_all.main(["--only", "fig99"]) == 2
    assert "no script matches" in capsys.readouterr().err



def _make_all():
    sys.path.insert(0, os.path.join(ROOT, "figures"))
    try:
        import make_all
    finally:
        sys.path.pop(0)
    return make_all


def test_check_finds_a_stale_figure_and_trains_nothing(tmp_path, capsys):
    """``make_all.py --check`` recomputes figure 7's table from results/ (no training) and compares it with
    the committed one: equal passes; a committed copy whose numbers differ (as after a run's metrics changed)
    fails, naming the figure."""
    import shutil
    make_all = _make_all()
    committed = tmp_path / "data"
    shutil.copytree(os.path.join(ROOT, "figures", "data"), committed)
    assert make_all.check(["fig7_variants"], str(committed)) == 0
    text = (committed / "fig7_variants.csv").read_text()
    row = text.splitlines()[1]
    (committed / "fig7_variants.csv").write_text(text.replace(row, row[:-1] + ("0" if row[-1] != "0" else "1"), 1))
    capsys.readouterr()
    assert make_all.check(["fig7_variants"], str(committed)) == 1
    assert "stale: fig7_variants (data/fig7_variants.csv)" in capsys.readouterr().err
    assert os.environ.get("FIGURES_CHECK") is None  # the scratch settings do not leak into the process


@pytest.mark.integration
def test_every_committed_figure_is_current():
    """The whole check, as CI runs it: every figure's committed data equals its recomputation."""
    res = subprocess.run([sys.executable, os.path.join(ROOT, "figures", "make_all.py"), "--check"],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ, MPLBACKEND="Agg"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
