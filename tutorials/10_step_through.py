# %% [markdown]
# # Lesson 10: step through the kernels with a debugger
#
# The fast code of this project is a handful of Numba kernels: loops over time and neurons compiled to
# machine code. Compiled code cannot be stepped through, but Numba has a switch: with the environment
# variable `NUMBA_DISABLE_JIT=1` set before Numba is imported, `numba.njit(f)` hands back `f` itself,
# so every kernel runs as the plain Python function it was written as. Same code, same numbers, just
# slower: a debugger can stop inside the TSSL-BP loop and show `u`, `du`, `s`, `G` and the carried `c`
# for one neuron at one step.
#
# You will:
# - see that a kernel is a compiled dispatcher normally and the plain function without the JIT;
# - read the TSSL-BP kernel against the equations of [`docs/paper-notes.md`](../docs/paper-notes.md)
#   section 3: each equation is one small function of `reference/steps.py` that every kernel calls
#   (line numbers found with `inspect`);
# - run a real `pdb` session (non-interactively, commands fed on stdin) that stops inside the kernel
#   at a spike, steps into the inter- and intra-neuron terms and checks them by hand;
# - check that a small network gives the same forward pass and gradients with and without the JIT;
# - learn how to do the same in VS Code and Jupyter.

# %%
import inspect
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
from _lesson import Lesson

L = Lesson("10_step_through")

from reference import _jit, tsslbp

# %% [markdown]
# ## 1. One kernel, two lives
#
# `reference/_jit.py` compiles every kernel the same way: the plain function is kept as
# `<name>_py`, and `<name> = kernel(<name>_py)` is `numba.njit(..., cache=True)` of it. The backward pass
# of a spiking layer is `reference.tsslbp._tsslbp_kernel` (called by `tsslbp_delta`). In this process:

# %%
PY = sys.executable


def describe(env_value: str) -> str:
    """What `_tsslbp_kernel` is in a fresh Python with NUMBA_DISABLE_JIT=env_value."""
    code = ("from reference import _jit, tsslbp; k = tsslbp._tsslbp_kernel; "
            "print(f'JIT_DISABLED={_jit.JIT_DISABLED}: _tsslbp_kernel is a {type(k).__module__}.{type(k).__name__}; '"
            "f'it is the plain function _tsslbp_kernel_py: {k is tsslbp._tsslbp_kernel_py}')")
    env = {**os.environ, "NUMBA_DISABLE_JIT": env_value, "PYTHONPATH": L.root}
    return subprocess.run([PY, "-c", code], env=env, cwd=L.root, capture_output=True, text=True,
                          check=True).stdout.strip()


k = tsslbp._tsslbp_kernel
print(f"this process: JIT_DISABLED={_jit.JIT_DISABLED}, _tsslbp_kernel is a {type(k).__name__}")
with_jit, without_jit = describe("0"), describe("1")
print(f"NUMBA_DISABLE_JIT=0 -> {with_jit}")
print(f"NUMBA_DISABLE_JIT=1 -> {without_jit}")
assert "is the plain function _tsslbp_kernel_py: True" in without_jit
assert "CPUDispatcher" in with_jit
if not _jit.JIT_DISABLED:
    assert k.py_func is tsslbp._tsslbp_kernel_py  # the dispatcher keeps the plain function

# %% [markdown]
# Under the JIT the dispatcher still holds the Python function (`_tsslbp_kernel.py_func`), so its source
# can be read either way. Here it is, with the file's line numbers: `inspect.getsourcelines` gives the
# first line, so no number below is typed by hand.

# %%
plain = tsslbp._tsslbp_kernel_py
src, first = inspect.getsourcelines(plain)
path = os.path.relpath(inspect.getsourcefile(plain), L.root)
print(f"{path}, lines {first}-{first + len(src) - 1}:\n")
for i, line in enumerate(src):
    print(f"{first + i:4d}  {line}", end="")


def line_of(snippet: str) -> int:
    """The file line number of the unique kernel line containing ``snippet``."""
    hits = [first + i for i, line in enumerate(src) if snippet in line]
    if len(hits) != 1:
        raise LookupError(f"{snippet!r} found on {len(hits)} lines of the kernel")
    return hits[0]

# %% [markdown]
# ## 2. The kernel against the equations
#
# A warning on names first: in `docs/paper-notes.md` `k` and `m` are both **time** steps
# (`G[k] = sum_{m >= k} ...`). In the kernel, `k` is the time step, but `m` is the **neuron** (a column
# of the `(T, M)` block), and the paper's later step is `k + j`. The arrays `c` and `G` hold one value per
# neuron: the kernel walks backwards in time, and at step `k`, `G[m]` is the paper's `G[k]` of neuron `m`.
#
# The kernel writes no equation itself: it is loops and memory layout around calls to one small function
# per equation, all in `reference/steps.py` (every kernel of the package calls the same ones; compiled,
# each is inlined into the kernel). The equations of `docs/paper-notes.md` section 3, for one neuron,
# with the step function that computes each, its one line in `reference/steps.py`, and the kernel line
# that calls it (found by their text, so no line number below is typed by hand; float64 arrays take
# the `np.exp` branch, float32 arrays a branch-free copy that LLVM can vectorise, `fast_exp`):

# %%
from reference import steps

READING = [
    ("G[k] = sum_{m>=k} eps[m-k] g[m]", steps.spike_error_add, "G[m] = spike_error_add(G[m], e, g[k + j, m])"),
    ("min(1/du[k], 8) s[k]  (= -dt_k/du[k])", steps.inv_du_clamped, "inv_du = inv_du_clamped("),
    ("inter[k] = G[k] min(1/du[k], 8) s[k]", steps.inter_term, "pre = inter_term("),
    ("intra[k] = c theta_m u min(1/du,8) s + c (1-theta_m)(1-s)", steps.intra_term, "pre = inter_term("),
    ("c <- pre[k] s[k] + c (1-s[k]) (1-theta_m)", steps.carry, "c[m] = carry("),
    ("z = clip((threshold - u)/0.2, -8, 8)", steps.warmup_z, "ez = np.exp(warmup_z("),
    ("delta[k] = G[k] e^z / ((1+e^z)^2 0.2) where a[k] < 1/(4 tau_s)", steps.warmup_f,
     "delta[k, m] = G[m] * warmup_f(ez, one, sigma)"),
]
steps_path = os.path.relpath(inspect.getsourcefile(steps), L.root)
LINES = {}
for eq, fn, snippet in READING:
    body, at = inspect.getsourcelines(fn)
    ret = next(at + i for i, line in enumerate(body) if line.strip().startswith("return "))
    LINES[snippet] = line_of(snippet)
    LINES[fn.__name__] = ret
    print(f"{eq:62s}\n    {steps_path}:{ret:<4d} {fn.__name__}: {body[ret - at].strip()}\n"
          f"    {path}:{LINES[snippet]:<4d} {src[LINES[snippet] - first].split('#')[0].strip()}")
LINES["pre"] = line_of("pre = inter_term(")
LINES["warm"] = line_of("delta[k, m] = G[m] * warmup_f(ez, one, sigma)")

# %% [markdown]
# Two details the table makes visible. The clamp is written `min(max(1/du, 0), 8) * s`: the authors'
# `clamp(-1/du, -8, 0)` with the sign flipped, and IEEE division makes `du = +0` give 8 as theirs does
# (and `du = -0` give 0; `reference/_jit.py` explains why the kernels use NumPy's error model). And the
# carried `c` is updated from `pre` *before* the warm-up may overwrite `delta[k, m]`: the rule of
# `docs/paper-notes.md` section 3, "the carried term is updated from `pre[k]`, not from the replaced value".
#
# "Where would I change the neuron?" has one answer: `reference/steps.py`, `lif_step` (and `psp_step` for
# the synapse); every forward kernel calls them. The rule's terms are the functions above, and the
# paper-era rule's own three are at the end of the same file.
#
# ## 3. A real breakpoint inside the kernel
#
# A tiny script: three LIF neurons for five steps on a random input current, in float64, then
# `tsslbp_delta` with a random `g`. It is written next to this lesson's figures, so you can open it in
# your editor too.

# %%
script = os.path.join(L.out, "step_me.py")
with open(script, "w") as fh:
    fh.write(textwrap.dedent('''\
        """Three LIF neurons, five steps, one TSSL-BP backward: a script to step through (lesson 10)."""
        import numpy as np

        from reference.neuron import lif_forward
        from reference.params import NeuronParams
        from reference.tsslbp import tsslbp_delta

        params = NeuronParams()                      # tau_m 5, tau_s 3, threshold 1, T 5
        rng = np.random.default_rng(0)
        x = rng.normal(0.5, 0.8, (5, 3))             # input current, (T, neurons), float64
        state = lif_forward(x, params)               # u, du, s, a
        g = rng.normal(0.0, 1.0, (5, 3))             # dL/da, as if from a next layer
        delta, branch = tsslbp_delta(g, state, params)
        print("spikes s:\\n", state.s.astype(int).T)
        print("delta:\\n", np.round(delta.T, 4))
        print("branch (0 warm-up, 1 inter, 2 intra):\\n", branch.T)
        '''))
print(open(script).read())

# %% [markdown]
# We run it under `python -m pdb` with `NUMBA_DISABLE_JIT=1` and type the commands on its stdin:
#
# 1. a **conditional breakpoint** on the kernel's line `pre = inter_term(...) + intra_term(...)`, stopping
#    only where the neuron fires (`sk == 1`) AND a later spike has left a carried term (`cm != 0`), so
#    that both TSSL-BP terms are at work;
# 2. `c` (continue) to it; print the loop variables, and recompute `min(1/du, 8)` by hand;
# 3. `s` (step) into `inter_term`: pdb is now in `reference/steps.py`, on the line of the equation;
#    `r` (return) shows what it returns, checked by hand; the same for `intra_term`;
# 4. `n` (next) and print the new carried `c[m]`: for a step that fired, `c <- pre`;
# 5. `clear`, a second breakpoint in the warm-up branch, `c`, and the surrogate checked by hand;
# 6. `q`.
#
# pdb does not echo commands read from a pipe; the transcript below puts each one back after its
# `(Pdb)` prompt.

# %%
pre_line, warm_line = LINES["pre"], LINES["warm"]
commands = [
    f"b {path}:{pre_line}, sk == 1 and cm != 0",
    "c",
    '!print(f"time k={k}, neuron m={m}: s={sk}, u={u[k, m]:.6f}, du={du[k, m]:.6f}, G={G[m]:.6f}, c={cm:.6f}")',
    '!print(f"min(1/du, 8) s = {inv_du:.6f}   by hand min(1/du[k], 8) s[k] = {min(1 / du[k, m], 8.0) * sk:.6f}")',
    '!print(f"by hand: inter = s min(1/du,8) G = {min(1 / du[k, m], 8.0) * G[m]:.6f}; intra = c theta_m u min(1/du,8) s + c (1-theta_m)(1-s) = {cm * theta_m * u[k, m] * min(1 / du[k, m], 8.0) * sk + cm * decay_m * (1 - sk):.6f}")',
    "s",
    "s",
    "r",
    '!print(f"inter_term returns {__return__:.6f}")',
    "s",
    "s",
    "r",
    '!print(f"intra_term returns {__return__:.6f}")',
    "n",
    "n",
    '!print(f"pre = {pre:.6f}, carried c[m] is now {c[m]:.6f} (fired: c <- pre)")',
    "clear 1",
    f"b {path}:{warm_line}",
    "c",
    '!print(f"warm-up at k={k}, m={m}: a={a[k, m]:.6f} < 1/(4 tau_s) = {warm_a:.6f}; u={u[k, m]:.6f}")',
    '!print(f"e^z = {ez:.6f}   by hand exp(clip((1 - u)/0.2, -8, 8)) = {np.exp(np.clip((threshold - u[k, m]) / sigma, -8, 8)):.6f}")',
    "n",
    '!print(f"delta = {delta[k, m]:.6f}   by hand G e^z/((1+e^z)^2 0.2) = {G[m] * ez / ((1 + ez) ** 2 * 0.2):.6f}")',
    "q",
]
env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": L.root}
run = subprocess.run([PY, "-m", "pdb", script], input="\n".join(commands) + "\n", env=env, cwd=L.root,
                     capture_output=True, text=True, timeout=120)
chunks = run.stdout.split("(Pdb) ")
transcript = chunks[0] + "".join(f"(Pdb) {cmd}\n{out}" for cmd, out in zip(commands, chunks[1:]))
print(transcript.replace(L.root + os.sep, ""))
with open(os.path.join(L.out, "pdb_transcript.txt"), "w") as fh:
    fh.write(transcript)

# %% [markdown]
# Each "by hand" value is the equation of `docs/paper-notes.md` evaluated on the variables pdb shows, next
# to the value the code computed. The check below reads the transcript and asserts that the session
# stopped in the kernel at both breakpoints, went into `inter_term` and `intra_term` in
# `reference/steps.py` on their equations' lines, and that every pair agrees to the printed digits.

# %%
import re

assert f"tsslbp.py({pre_line})_tsslbp_kernel()" in run.stdout, run.stdout + run.stderr
assert f"tsslbp.py({warm_line})_tsslbp_kernel()" in run.stdout
for name in ("inter_term", "intra_term"):
    assert f"steps.py({LINES[name]}){name}()" in run.stdout, (name, run.stdout)
pairs = re.findall(r"= (-?\d+\.\d+)\s+by hand[^=]*= (-?\d+\.\d+)", run.stdout)
hand = dict(re.findall(r"(inter|intra) = [^=]+= (-?\d+\.\d+)", run.stdout.split("by hand: ")[1].splitlines()[0]))
returned = dict(re.findall(r"(inter|intra)_term returns (-?\d+\.\d+)", run.stdout))
pairs += [(returned[t], hand[t]) for t in ("inter", "intra")]
assert len(pairs) == 5, pairs
assert all(a == b for a, b in pairs), pairs
print(f"pdb stopped at {path}:{pre_line} and {path}:{warm_line}, and in {steps_path} at inter_term "
      f"(line {LINES['inter_term']}) and intra_term (line {LINES['intra_term']}); all {len(pairs)} hand "
      "computations agree")

# %% [markdown]
# The same neurons in pictures. We run the script in this process (compiled kernels) and compute the
# terms again with the readable NumPy twins of `reference.tsslbp` (`spike_error`, `inter_neuron_term`,
# `intra_neuron_term`): left, the membranes of the three neurons (`reference.app.plots.membrane_trace`);
# middle and right, the delta of each neuron pdb stopped at, split into its terms
# (`reference.app.plots.delta_by_term`), with the step where pdb stopped shaded. The values pdb printed
# must be the twins' values at those steps.

# %%
import runpy

import matplotlib.pyplot as plt

from reference.app import plots
from reference.neuron import psp_kernel

ns = runpy.run_path(script)  # the script's globals: state, g, delta, branch, params
st, prm = ns["state"], ns["params"]
G = tsslbp.spike_error(ns["g"], psp_kernel(prm.n_steps, prm.tau_s))
inter = tsslbp.inter_neuron_term(G, st.du, st.s)
intra = tsslbp.intra_neuron_term(inter, st.u, st.du, st.s, prm.theta_m)
k1, m1 = map(int, re.search(r"time k=(\d+), neuron m=(\d+)", run.stdout).groups())
k2, m2 = map(int, re.search(r"warm-up at k=(\d+), m=(\d+)", run.stdout).groups())
shown = {**returned, **dict(re.findall(r"(delta) = (-?\d+\.\d+)", run.stdout))}
assert f"{inter[k1, m1]:.6f}" == shown["inter"] and f"{intra[k1, m1]:.6f}" == shown["intra"]
assert f"{ns['delta'][k2, m2]:.6f}" == shown["delta"] and ns["branch"][k2, m2] == tsslbp.BRANCH_WARMUP
print(f"pdb's inter {shown['inter']}, intra {shown['intra']} (k={k1}, m={m1}) and warm-up delta "
      f"{shown['delta']} (k={k2}, m={m2}) equal the NumPy twins' values")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for i in range(st.u.shape[1]):
    plots.membrane_trace(st.u[:, i], st.s[:, i], threshold=prm.threshold, ax=axes[0], label=f"neuron m={i}",
                         color=f"C{i}")
stops = ((k1, m1, "1st breakpoint: fired, c != 0"), (k2, m2, "2nd breakpoint: warm-up"))
for n, (kk, mm, _) in enumerate(stops):
    axes[0].plot(kk, st.u[kk, mm], "o", ms=16, mfc="none", mec="gold", mew=2.5,
                 label="where pdb stopped" if n == 0 else None)
handles, labs = axes[0].get_legend_handles_labels()
keep = {lab: h for h, lab in zip(handles, labs) if "spikes" not in lab}
axes[0].legend(list(keep.values()), list(keep.keys()), fontsize=7)
axes[0].set_title("step_me.py: membranes u[t]\n(triangles: spikes)", fontsize=10)
for n, (ax, (kk, mm, what)) in enumerate(zip(axes[1:], stops)):
    plots.delta_by_term(inter[:, mm], intra[:, mm], ns["delta"][:, mm], ns["branch"][:, mm], ax=ax,
                        legend=n == 0)
    ax.set_title(f"neuron m={mm}: delta by term\n({what} at k={kk}, shaded)", fontsize=10)
    ax.axvspan(kk - 0.45, kk + 0.45, color="gold", alpha=0.3, zorder=0)
fig.tight_layout()
L.save(fig, "stepped_neurons")

# %% [markdown]
# ## 4. Same numbers with and without the JIT
#
# Stepping through plain Python is only useful if it computes what the compiled code computes. A small
# network (a strided convolution, sum-pooling and two dense spiking layers: every kind of kernel of the
# forward and backward pass) on four real MNIST test digits, in two fresh processes, one compiled and
# one with `NUMBA_DISABLE_JIT=1`. Each saves its output PSP, the membrane `u` and spikes `s` of every
# spiking layer, every layer's delta and the weight gradients (`tests/test_core.py` does the same check,
# `test_kernels_run_as_plain_python_with_same_numbers`).
#
# What to expect, and the tolerances:
# - **forward: bit-identical.** The kernels fix the order of every float32 operation (`_jit.py`:
#   `fastmath` off, so LLVM may neither reorder nor fuse), NumPy does the matrix products in both runs,
#   and the spike decisions `u > threshold` must not depend on the JIT;
# - **gradients: within 1e-6 relative** (about 8 float32 epsilons, 2^-23 each), the project
#   test's bound. The backward is written in the same fixed order, so we expect them to be identical too;
#   the bound leaves room for a compiler that rounds one intermediate differently, while any real
#   difference in a term (a missing factor, a wrong branch) would be orders of magnitude larger.

# %%
net_script = os.path.join(L.out, "tiny_network.py")
with open(net_script, "w") as fh:
    fh.write(textwrap.dedent('''\
        """A small network's forward and backward, saved to the .npz named on the command line (lesson 10)."""
        import sys
        import time

        import numpy as np

        sys.path.insert(0, sys.argv[2])  # tutorials/, for mnist_images
        from _lesson import mnist_images

        from reference import _jit
        from reference.network import Network

        TINY = {
            "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
            "Layers": {
                "conv": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 5, "stride": 2,
                         "weight_scale": 3, "threshold": 1},
                "pool": {"type": "pooling", "kernel_size": 2},
                "hidden": {"type": "linear", "n_inputs": 144, "n_outputs": 32, "weight_scale": 2, "threshold": 1},
                "output": {"type": "linear", "n_inputs": 32, "n_outputs": 10, "weight_scale": 2, "threshold": 1},
            },
        }
        x, y = mnist_images(4)
        net = Network(TINY, seed=1)
        net.gradients(x, y)                                   # first call compiles (or loads the cache)
        t0 = time.perf_counter()
        loss, grads, out = net.gradients(x, y)
        seconds = time.perf_counter() - t0
        arrays = {"out": out, "loss": loss, "seconds": seconds, "jit_disabled": _jit.JIT_DISABLED}
        arrays.update({f"grad/{k}": v for k, v in grads.items()})
        for r in net.records:
            arrays[f"delta/{r.name}"] = r.delta
            if r.state is not None:
                arrays[f"u/{r.name}"], arrays[f"s/{r.name}"] = r.state.u, r.state.s
        np.savez(sys.argv[1], **arrays)
        '''))

runs = {}
for mode, flag in (("jit", "0"), ("python", "1")):
    npz = os.path.join(L.out, f"tiny_{mode}.npz")
    t0 = time.perf_counter()
    subprocess.run([PY, net_script, npz, os.path.join(L.root, "tutorials")], check=True, cwd=L.root,
                   env={**os.environ, "NUMBA_DISABLE_JIT": flag, "PYTHONPATH": L.root})
    with np.load(npz) as d:
        runs[mode] = {k: d[k] for k in d.files}
    print(f"{mode:6s}: JIT disabled = {bool(runs[mode]['jit_disabled'])}; one forward+backward "
          f"{runs[mode]['seconds'] * 1e3:.1f} ms (the whole process, with imports and compiling or "
          f"loading the compiled cache: {time.perf_counter() - t0:.1f} s)")

jit, py = runs["jit"], runs["python"]
assert not jit["jit_disabled"] and py["jit_disabled"]
print(f"\n{'array':14s} {'bit-identical':>13s} {'max rel. diff':>14s}")
for key in sorted(k for k in jit if "/" in k or k in ("out", "loss")):
    same = np.array_equal(jit[key], py[key])
    rel = np.abs(jit[key] - py[key]).max() / max(np.abs(jit[key]).max(), np.finfo(np.float32).tiny)
    print(f"{key:14s} {str(same):>13s} {rel:14.1e}")
    if key.startswith(("u/", "s/")) or key in ("out", "loss"):
        assert same, key  # forward: bit for bit
    else:
        assert rel < 1e-6, key  # gradients and deltas: the tolerance argued above
assert py["seconds"] > jit["seconds"]
print(f"\nforward bit-identical; gradients within 1e-6; plain Python is {py['seconds'] / jit['seconds']:.0f}x "
      "slower on this tiny network")

# %% [markdown]
# ## 5. Doing it in your editor
#
# The rule: `NUMBA_DISABLE_JIT` is read **when Numba is first imported**, and `reference` imports Numba.
# Set it before that, and restart the interpreter if Numba is already loaded (check with
# `reference._jit.JIT_DISABLED`).
#
# - **Shell**: `NUMBA_DISABLE_JIT=1 python -m pdb <figure folder>/step_me.py` (the command for this
#   lesson's script, `step_me.py` of section 3, is printed below), then
#   `b reference/tsslbp.py:<line>` and `c`; or put `breakpoint()` inside a kernel in your copy of the code:
#   without the JIT it is an ordinary Python line (with the JIT, Numba stops with a `TypingError`:
#   "Untyped global name 'breakpoint'", so take it out again).
# - **VS Code**: in `.vscode/launch.json`, a configuration
#   `{"name": "step through", "type": "debugpy", "request": "launch", "program": "${file}",
#   "cwd": "${workspaceFolder}", "env": {"NUMBA_DISABLE_JIT": "1"}, "justMyCode": true}`;
#   click in the gutter of `reference/tsslbp.py` inside `_tsslbp_kernel` (right-click: "Conditional
#   Breakpoint..." takes an expression such as `sk == 1 and cm != 0`) and press F5. The Variables pane
#   shows `k`, `m`, `sk`, `G`, `c`, ... For the test explorer, put the line `NUMBA_DISABLE_JIT=1` in a
#   `.env` file at the workspace root (the Python extension reads it, setting `python.envFile`); from a
#   shell, `NUMBA_DISABLE_JIT=1 pytest tests/test_tsslbp.py --pdb` stops at the first failure.
# - **Jupyter** (and VS Code notebooks): in the first cell, before any `import reference`:
#   `%env NUMBA_DISABLE_JIT=1` (or `import os; os.environ["NUMBA_DISABLE_JIT"] = "1"`). Then
#   `%debug` after an exception, or `from IPython.core.debugger import set_trace` / `breakpoint()` in
#   your own copy of a kernel; `%%debug` runs a cell under the debugger. Restart the kernel to get the
#   fast code back.
#
# Keep the shapes small while stepping: plain Python runs the kernels much more slowly (the ratio is
# printed in section 4), and a few neurons and a few images are plenty. Section 4's comparison is also a
# test of the project (`tests/test_core.py`), so the plain-Python path you step through stays the
# path that runs.

# %%
shown = L.shown(script)
print(f"from the project folder: NUMBA_DISABLE_JIT=1 python -m pdb {shown}")
L.done()
