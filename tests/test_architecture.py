"""The structure that keeps the project's promises: engine below, application above, no cycles, pure layers.

Engine: NumPy + Numba only.  ``config`` is the boundary: the engine builds networks from its validated
``Config``; it reads YAML only when asked to load a file (lazily), so the engine runs without PyYAML.
"""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PKG = os.path.join(ROOT, "reference")
ENGINE = {"_jit", "steps", "params", "neuron", "tsslbp", "paper2020", "surrogate", "layers", "losses", "rules", "options", "network",
          "optim",
          "config"}
APPLICATION = {"atomic", "data", "nmnist", "arrays", "runs", "evaluation", "train", "diagnostics", "compare", "plots", "demo", "cli", "__main__",
               "autograd", "summary", "blas"}


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


def test_every_module_is_engine_or_application():
    tops = {m.split(".")[0] for m in _modules() if m}
    assert tops <= ENGINE | APPLICATION, tops - ENGINE - APPLICATION


def test_engine_never_imports_the_application():
    bad = {m: sorted(i for i in deps if i.split(".")[0] in APPLICATION)
           for m, deps in _graph().items() if m in ENGINE}
    assert {m: d for m, d in bad.items() if d} == {}


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


@pytest.mark.parametrize("module", ["reference.plots"])
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
    """docs/architecture.md draws the two floors: each module of the test's sets is named on its floor's
    line (engine modules on the engine drawing or in its text), and the page names no module that is gone."""
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        page = fh.read()
    drawing = page.split("```")[1]
    app_lines = drawing.split("engine ")[0]
    for m in APPLICATION - {"__main__"}:
        assert f" {m}" in app_lines, f"{m} is not on the application floor of docs/architecture.md"
    for m in ENGINE - {"_jit"}:
        assert m in drawing.split("engine ", 1)[1], f"{m} is not on the engine floor of docs/architecture.md"
    for name in __import__("re").findall(r"`reference/(\w+)\.py`", page):
        assert os.path.exists(os.path.join(PKG, f"{name}.py")), name


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
