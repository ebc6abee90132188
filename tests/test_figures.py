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

