"""The animation helper: a real GIF (Pillow writer), one frame per snapshot, clear errors."""
import numpy as np
import pytest
from PIL import Image

from reference.app import plots
from reference.network import Network
from reference.optim import AdamW, train_step
from test_core import TINY_CNN, mnist


def test_snapshots_and_gif(tmp_path):
    net = Network(TINY_CNN, seed=3)
    opt = AdamW(net.weights, lr=0.01)
    x, y = mnist(8)
    snaps = []
    for _ in range(4):
        snaps.append(plots.neuron_snapshot(net, x[:2], y[:2], "fc", [0, 3], sample=1))
        train_step(net, x, y, opt)
    s0 = snaps[0]
    assert s0["u"].shape == s0["delta"].shape == (5, 2) and s0["branch"].dtype == np.int8
    net.gradients(x[:2], y[:2])  # the snapshot is the network's own record, sample 1, neurons 0 and 3
    assert s0["neurons"] == [0, 3] and s0["layer"] == "fc"
    rec = net.records[-1]
    last = plots.neuron_snapshot(net, x[:2], y[:2], "fc", [0, 3], sample=1)
    np.testing.assert_allclose(last["delta"], rec.delta[:, 1, [0, 3]], rtol=0, atol=0)
    path = plots.training_animation(snaps, tmp_path / "a.gif", steps=[0, 1, 2, 3], fps=5, title="tiny")
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4 and im.size[0] > 300
    with pytest.raises(ValueError, match="no spiking layer 'pool'"):
        plots.neuron_snapshot(net, x[:2], y[:2], "pool", [0])
    with pytest.raises(ValueError, match="at least one snapshot"):
        plots.training_animation([], tmp_path / "b.gif")
    with pytest.raises(ValueError, match="3 steps for 4 snapshots"):
        plots.training_animation(snaps, tmp_path / "b.gif", steps=[0, 1, 2])
