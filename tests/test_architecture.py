"""The structure that keeps the project's promises: four floors, each importing only the floors below it.

- the algorithm, ``reference/*.py`` (``reference.neuron``, ``reference.tsslbp``, ...): NumPy + Numba only.
  ``config`` is its boundary: networks are built from a validated ``Config``; YAML is read only when a
  file is loaded (lazily), so the algorithm runs without PyYAML;
- ``reference/twins/``: the PyTorch and JAX twins, BPTT and gradcheck, which check the algorithm;
- ``reference/engines/``: the training engines (NumPy, PyTorch) behind one interface;
- ``reference/app/``: data, the run folder, the training loop, summaries, diagnostics, figures, the CLI.

``docs/architecture.md`` draws them; :data:`FLOORS` is the one list this test and that page agree on.
"""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PKG = os.path.join(ROOT, "reference")
#: From the bottom up: the modules of each floor (dotted below ``reference``).  A module may import its own
#: floor and the floors below.
FLOORS = {
    "algorithm": {"_jit", "steps", "params", "neuron", "tsslbp", "paper2020", "surrogate", "layers", "losses",
                  "rules", "options", "network", "optim", "config", "", "_moved"},
    "twins": {"twins", "twins.model", "twins.torch_backend", "twins.jax_backend", "twins.bptt", "twins.check"},
    "engines": {"engines", "engines.evaluation", "engines.numpy_engine", "engines.torch_engine"},
    "app": {"app", "app.atomic", "app.data", "app.nmnist", "app.arrays", "app.runs", "app.train", "app.diagnostics",
            "app.compare", "app.plots", "app.demo", "app.cli", "app.summary", "app.blas", "app.authors_checkpoint",
            "__main__"},
}
ENGINE = FLOORS["algorithm"] - {""}  # the algorithm's modules (the API page and the drawing name each)
LEVEL = {m: i for i, floor in enumerate(FLOORS.values()) for m in floor}


def _modules():
    """Module name (dotted below reference, e.g. 'autograd.model') -> path."""
    out = {}
    for folder, _, files in os.walk(PKG):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), PKG)[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__") if rel != "__init__" else ""] = os.path.join(folder, name)
    return out


def _imports(path, module):
    """Modules of the package that ``module`` imports anywhere in its file (also inside functions)."""
    pkg = module.split(".")[:-1] if not path.endswith("__init__.py") else module.split(".") if module else []
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - node.level + 1] if node.level > 1 else list(pkg)
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [".".join(base + [a.name]) for a in node.names]
            found.update(n for n in names if n)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            name = node.module if isinstance(node, ast.ImportFrom) else None
            for n in ([name] if name else [a.name for a in node.names]):
                if n and n.startswith("reference."):
                    found.add(n[len("reference."):])
    return found


def _graph():
    mods = _modules()
    return {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def test_every_module_is_on_a_floor():
    mods = set(_modules())
    assert mods == set(LEVEL), {"on no floor": sorted(mods - set(LEVEL)), "gone": sorted(set(LEVEL) - mods)}


def test_every_floor_imports_only_itself_and_the_floors_below():
    up = {m: sorted(i for i in deps if LEVEL[i] > LEVEL[m]) for m, deps in _graph().items()}
    assert {m: d for m, d in up.items() if d} == {}


def test_a_folder_is_one_floor():
    """Each sub-folder of the package is exactly one floor, so the folders show the floors."""
    for floor, mods in FLOORS.items():
        if floor != "algorithm":
            assert {m.split(".")[0] for m in mods if m != "__main__"} == {floor}


def test_no_import_cycles():
    graph = _graph()
    state, cycles = {}, []

    def visit(m, path):
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_engine_runs_without_yaml_matplotlib_tqdm_torch_jax():
    """Import the engine and train one step with those packages made unimportable."""
    code = """
import sys
for name in ("yaml", "matplotlib", "tqdm", "torch", "jax"):
    sys.modules[name] = None  # any import of it now raises ImportError
import numpy as np
from reference.network import Network
from reference.optim import AdamW, train_step
cfg = {"Network": {"n_steps": 5, "tau_m": 5, "tau_s": 3, "n_class": 3, "loss": "kernel", "dataset": "MNIST"},
       "Layers": {"out": {"type": "linear", "n_inputs": 784, "n_outputs": 3, "threshold": 1}}}
net = Network(cfg, seed=0)
x = np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)
loss, out, norm = train_step(net, x, np.array([0, 1, 2, 0]), AdamW(net.weights, lr=1e-3))
loaded = sorted(n for n in ("yaml", "matplotlib", "tqdm", "torch", "jax") if sys.modules.get(n) is not None)
print("OK", loaded, np.isfinite(loss))
"""
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "OK [] True"


def test_layers_keep_no_state_between_calls(mnist_batch):
    """Forward and backward leave every layer's attributes as they were; caches carry what is needed."""
    from reference.network import Network

    net = Network(os.path.join(ROOT, "configs", "MNIST_CNN.yaml"), seed=0)
    before = [dict(vars(layer)) for layer in net.layers]
    x, y = mnist_batch(3, dtype=np.float32)
    net.gradients(x, y, train=True)
    after = [dict(vars(layer)) for layer in net.layers]
    for b, a in zip(before, after):
        assert b.keys() == a.keys() and all(b[k] is a[k] for k in b)


def test_backward_uses_its_own_forward_cache(mnist_batch):
    """Two forwards, then the backward of the FIRST: with caches this is exact (hidden state got it wrong)."""
    from reference.network import Network

    net = Network(os.path.join(ROOT, "configs", "MNIST_CNN.yaml"), seed=0)
    x, y = mnist_batch(6, dtype=np.float32)
    _, ref, _ = net.gradients(x[:3], y[:3])
    out = net.forward(x[:3])
    records = net.records
    net.forward(x[3:])  # another batch in between
    net.records = records
    _, g = net.loss(out, y[:3])
    for name, grad in net.backward(g).items():
        np.testing.assert_array_equal(grad, ref[name])


@pytest.mark.parametrize("module", ["reference.app.plots"])
def test_plots_leave_the_backend_alone(module):
    code = f"import matplotlib; matplotlib.use('svg'); import {module}; print(matplotlib.get_backend())"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT, "MPLBACKEND": ""}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1000:]
    assert proc.stdout.strip() == "svg"


def test_every_engine_module_is_on_the_api_page():
    """The algorithm's modules are what a learner reads: each has its section on docs/api.md."""
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as fh:
        page = fh.read()
    missing = sorted(m for m in ENGINE if not m.startswith("_") and f".. automodule:: reference.{m}\n" not in page)
    assert not missing, f"docs/api.md has no section for {missing}"


def test_the_architecture_page_names_every_module_on_its_floor():
    """docs/architecture.md draws the floors: every module of :data:`FLOORS` is named on its floor's part
    of the drawing, and every ``reference/...py`` path the page names exists."""
    import re

    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        page = fh.read()
    drawing = page.split("```")[1]
    parts = dict(re.findall(r"^(algorithm|twins|engines|app)\b(.*?)(?=^(?:algorithm|twins|engines|app)\b|\Z)",
                            drawing, flags=re.S | re.M))
    assert set(parts) == set(FLOORS), sorted(parts)
    for floor, mods in FLOORS.items():
        for m in mods - {"", "_jit", "__main__", "_moved", "twins", "engines", "app"}:
            assert re.search(rf"\b{re.escape(m.split('.')[-1])}\b", parts[floor]), f"{m} is not on the {floor} floor"
    for path in re.findall(r"`(reference/[\w/]+\.py)`", page):
        assert os.path.exists(os.path.join(ROOT, path)), path


def test_constant_doc_comments_render_on_the_api_page():
    """Sphinx's napoleon reads the first line of a ``#:`` comment as ``type: description`` when it holds a
    colon outside code, which rendered MAX_INV_DU's text as a TYPE field (issue 34). No first line may."""
    import re

    bad = []
    for folder, _, files in os.walk(PKG):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            prev = False
            for i, line in enumerate(open(path, encoding="utf-8"), 1):
                doc = line.lstrip().startswith("#:")
                if doc and not prev:
                    text = re.sub(r"``.*?``|:\w+:`[^`]*`", "X", line.lstrip()[2:])
                    if re.search(r":(\s|$)", text):
                        bad.append(f"{os.path.relpath(path, ROOT)}:{i}")
                prev = doc
    assert not bad, f"a colon in the first line of these #: comments splits them on the API page: {bad}"


def test_old_module_names_still_import_with_a_warning():
    """Code written before the folders (``from reference.train import train``, ``reference.autograd``) gets
    the very module of the new name, and a DeprecationWarning naming it; every new name exists."""
    import importlib

    from reference._moved import MOVED

    for old, new in MOVED.items():
        assert os.path.exists(os.path.join(PKG, *new.split("."))) or os.path.exists(
            os.path.join(PKG, *new.split(".")) + ".py"), new
        assert not os.path.exists(os.path.join(PKG, *old.split(".")) + ".py"), f"{old} is back at its old place"
    code = """
import warnings, sys
warnings.simplefilter("error", DeprecationWarning)
try:
    import reference.train
except DeprecationWarning as w:
    print("warned:", w)
warnings.simplefilter("ignore", DeprecationWarning)
import reference.train, reference.app.train, reference.autograd.check, reference.twins.check
from reference.autograd import backend
print(reference.train is reference.app.train, reference.autograd.check is reference.twins.check)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.splitlines() == ["warned: reference.train moved to reference.app.train; import it from there "
                                        "(the old name will go)", "True True"]
    importlib.import_module("reference")  # the finder is installed by the package itself
    assert any(type(f).__name__ == "MovedFinder" for f in sys.meta_path)
