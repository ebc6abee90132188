"""Every kernel, bit for bit as it was before its arithmetic moved into ``reference.steps``.

The digests below are SHA-256 of the outputs of every compiled kernel (through the public functions and
through whole networks: outputs, every layer's delta, every weight gradient), recorded on 2026-12-06 from
the kernels as they were written before (commit 3c76ed2), in float32 and float64, in every warm-up mode and
ablation, for the paper-era rule, and on edge inputs (``du`` exactly 0 and -0 at a spike, grazing spikes).
A change in any bit of any of them changes a digest.  Tolerance: none; these are equalities.

Skipped with ``NUMBA_DISABLE_JIT=1``: the plain-Python kernels call NumPy's float64 ``exp``, which differs
from the compiled one's libm in the last ulp for some inputs; they are checked against the compiled ones
to a stated tolerance in the kernels' own tests.
"""
import functools
import hashlib
import os

import numpy as np
import pytest

from conftest import ROOT, load_mnist
from reference._jit import JIT_DISABLED
from reference.neuron import CompactState, NeuronState, lif_compact, lif_forward, psp
from reference.network import Network
from reference.paper2020 import paper2020_delta
from reference.params import NeuronParams
from reference.tsslbp import tsslbp_delta

compiled_only = pytest.mark.skipif(JIT_DISABLED, reason="digests of the compiled kernels (see the module docstring)")

PARAMS = NeuronParams(tau_m=5, tau_s=3, threshold=1.0, n_steps=5)


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _current(dtype, shape=(5, 3, 700)):
    rng = np.random.default_rng(7)
    return (rng.normal(0.35, 0.5, size=shape)).astype(dtype)


def _edge_state(dtype):
    """A hand-made state with du = +0, -0, tiny and negative at spike steps, and silent neurons."""
    rng = np.random.default_rng(11)
    T, M = 5, 64
    u = rng.normal(0.9, 0.4, size=(T, M)).astype(dtype)
    du = rng.normal(0.1, 0.3, size=(T, M)).astype(dtype)
    s = (u > 1).astype(dtype)
    du[0, :4] = [0.0, -0.0, 1e-9, -0.2]
    s[0, :4] = 1
    u[0, :4] = 1.0 + np.array([1e-7, 0.0, 0.5, 0.2])
    a = psp(s, PARAMS.tau_s)
    return NeuronState(u, du, s, a)


@functools.lru_cache(maxsize=None)
def _states(dt):
    """The forward state, full and compact, of ``_current(dt)``: computed at a test's first use, not at
    collection, where each xdist worker would compile the LIF kernels before running any test."""
    x = _current(dt)
    return x, lif_forward(x, PARAMS), lif_compact(x, PARAMS)[1]


def cases():
    """``{case name: callable returning its digest}``; nothing is computed until a case is called."""
    out = {}
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name

        def state(dt=dt):
            return _states(dt)[1]

        def compact(dt=dt):
            c = _states(dt)[2]
            return CompactState(c.du, c.spikes, c.a)

        def current(dt=dt):
            return _states(dt)[0]

        def gradient(dt=dt):
            return np.random.default_rng(3).normal(0, 0.1, size=_current(dt).shape).astype(dt)

        out[f"lif_forward/{name}"] = lambda st=state: _digest(st().u, st().du, st().s, st().a)
        out[f"lif_compact/{name}"] = lambda x=current: (lambda a, c: _digest(a, c.du, c.spikes, c.u))(
            *lif_compact(x(), PARAMS))
        out[f"lif_infer/{name}"] = lambda x=current: _digest(lif_compact(x(), PARAMS, record=False)[0])
        out[f"psp/{name}"] = lambda x=current: _digest(psp(x(), PARAMS.tau_s))
        for warmup in ("per-neuron", "always", "never"):
            for inter, intra in ((True, True), (False, True), (True, False)):
                key = f"{warmup}/inter={inter}/intra={intra}/{name}"
                out[f"tsslbp_full/{key}"] = lambda g=gradient, st=state, w=warmup, i=inter, j=intra: _digest(
                    *tsslbp_delta(g(), st(), PARAMS, inter=i, intra=j, warmup=w))
                out[f"tsslbp_compact/{key}"] = lambda g=gradient, c=compact, w=warmup, i=inter, j=intra: _digest(
                    *tsslbp_delta(g(), c(), PARAMS, inter=i, intra=j, warmup=w))
        out[f"tsslbp_edge/{name}"] = lambda dt=dt: _digest(*tsslbp_delta(
            np.random.default_rng(5).normal(0, 0.1, size=_edge_state(dt).u.shape).astype(dt), _edge_state(dt),
            PARAMS))
        for rate in (0.0, 0.5):  # the layer switch: TSSL-BP branch, warm-up branch
            for intra in (True, False):
                out[f"paper2020/{rate}/intra={intra}/{name}"] = lambda g=gradient, c=compact, r=rate, j=intra: _digest(
                    *paper2020_delta(g(), c(), PARAMS, rate_threshold=r, intra=j))
    x, y = load_mnist(8)
    for config, opts in (("FashionMNIST_400_400.yaml", {}), ("MNIST_CNN.yaml", {}),
                         ("MNIST_CNN.yaml", {"warmup": "always"}), ("MNIST_CNN.yaml", {"intra": False}),
                         (os.path.join("paper2020", "MNIST_CNN.yaml"), {"variant": "paper2020"})):
        for dt in (np.float32, np.float64):
            key = f"network/{config}/{','.join(f'{k}={v}' for k, v in opts.items())}/{np.dtype(dt).name}"

            def run(config=config, opts=opts, dt=dt):
                net = Network(os.path.join(ROOT, "configs", config), dtype=dt, seed=1, **opts)
                loss, grads, out_ = net.gradients(x.astype(dt), y)
                parts = [out_, np.asarray(loss)] + [grads[k] for k in sorted(grads)]
                parts += [r.delta for r in net.records] + [r.branch for r in net.records if r.branch is not None]
                return _digest(*parts, net.infer(x.astype(dt)))
            out[key] = run
    return out


CASES = {} if JIT_DISABLED else cases()

#: Recorded from the kernels before the change (see the module docstring).
DIGESTS = {
    'lif_compact/float32': 'abd7171c58f4de71',
    'lif_compact/float64': '03898db1aaf061e2',
    'lif_forward/float32': '4ce38ba2ee28408e',
    'lif_forward/float64': 'fb81b980cc3c68e6',
    'lif_infer/float32': '3589b6a5466054ad',
    'lif_infer/float64': 'cb96c9f6178f6c39',
    'paper2020/0.0/intra=False/float32': '11e17f8900264e59',
    'paper2020/0.0/intra=False/float64': '4773602d9a152b40',
    'paper2020/0.0/intra=True/float32': '9b1f6db438ebea64',
    'paper2020/0.0/intra=True/float64': '4b6fe7bb7cf38c11',
    'paper2020/0.5/intra=False/float32': 'cdc55026e77edc72',
    'paper2020/0.5/intra=False/float64': '83d2c23bfd1596e3',
    'paper2020/0.5/intra=True/float32': '6b18aa5379dacc60',
    'paper2020/0.5/intra=True/float64': '1e8a5c0fde8a66b7',
    'psp/float32': 'dc27a223615ecdf3',
    'psp/float64': '2675379f6ed51ed5',
    'tsslbp_compact/always/inter=False/intra=True/float32': 'cdc55026e77edc72',
    'tsslbp_compact/always/inter=False/intra=True/float64': '83d2c23bfd1596e3',
    'tsslbp_compact/always/inter=True/intra=False/float32': 'cdc55026e77edc72',
    'tsslbp_compact/always/inter=True/intra=False/float64': '83d2c23bfd1596e3',
    'tsslbp_compact/always/inter=True/intra=True/float32': 'cdc55026e77edc72',
    'tsslbp_compact/always/inter=True/intra=True/float64': '83d2c23bfd1596e3',
    'tsslbp_compact/never/inter=False/intra=True/float32': 'ca4e4f004175e460',
    'tsslbp_compact/never/inter=False/intra=True/float64': 'b0e2641e63d0ab09',
    'tsslbp_compact/never/inter=True/intra=False/float32': '3edee3c4754d8c26',
    'tsslbp_compact/never/inter=True/intra=False/float64': '8b2f2814a563f717',
    'tsslbp_compact/never/inter=True/intra=True/float32': '924f8944290e149d',
    'tsslbp_compact/never/inter=True/intra=True/float64': '066a42f878e9f7b0',
    'tsslbp_compact/per-neuron/inter=False/intra=True/float32': '2520210e8d21e2dc',
    'tsslbp_compact/per-neuron/inter=False/intra=True/float64': '0bd2c73cc7ba68e0',
    'tsslbp_compact/per-neuron/inter=True/intra=False/float32': '6014533ff2568ab5',
    'tsslbp_compact/per-neuron/inter=True/intra=False/float64': 'b0cb00e91edd81ab',
    'tsslbp_compact/per-neuron/inter=True/intra=True/float32': '52031eccc53ec18a',
    'tsslbp_compact/per-neuron/inter=True/intra=True/float64': '8b679daef0760086',
    'tsslbp_edge/float32': 'd13d5bb95750ae7d',
    'tsslbp_edge/float64': '5dfd52f70cd9dec1',
    'tsslbp_full/always/inter=False/intra=True/float32': 'cdc55026e77edc72',
    'tsslbp_full/always/inter=False/intra=True/float64': '83d2c23bfd1596e3',
    'tsslbp_full/always/inter=True/intra=False/float32': 'cdc55026e77edc72',
    'tsslbp_full/always/inter=True/intra=False/float64': '83d2c23bfd1596e3',
    'tsslbp_full/always/inter=True/intra=True/float32': 'cdc55026e77edc72',
    'tsslbp_full/always/inter=True/intra=True/float64': '83d2c23bfd1596e3',
    'tsslbp_full/never/inter=False/intra=True/float32': 'ca4e4f004175e460',
    'tsslbp_full/never/inter=False/intra=True/float64': 'b0e2641e63d0ab09',
    'tsslbp_full/never/inter=True/intra=False/float32': '3edee3c4754d8c26',
    'tsslbp_full/never/inter=True/intra=False/float64': '8b2f2814a563f717',
    'tsslbp_full/never/inter=True/intra=True/float32': '924f8944290e149d',
    'tsslbp_full/never/inter=True/intra=True/float64': '066a42f878e9f7b0',
    'tsslbp_full/per-neuron/inter=False/intra=True/float32': '2520210e8d21e2dc',
    'tsslbp_full/per-neuron/inter=False/intra=True/float64': '0bd2c73cc7ba68e0',
    'tsslbp_full/per-neuron/inter=True/intra=False/float32': '6014533ff2568ab5',
    'tsslbp_full/per-neuron/inter=True/intra=False/float64': 'b0cb00e91edd81ab',
    'tsslbp_full/per-neuron/inter=True/intra=True/float32': '52031eccc53ec18a',
    'tsslbp_full/per-neuron/inter=True/intra=True/float64': '8b679daef0760086',
}

#: The whole-network cases also run OpenBLAS's GEMM, whose last bits depend on the kernel OpenBLAS picks
#: for the CPU (``reference.app.blas.blas_info()['core']``; the same code gave other digests with
#: ``OPENBLAS_CORETYPE=Sandybridge`` than with Haswell on one machine). So they are recorded per machine,
#: keyed by that kernel and LLVM's name of the host CPU (``machine_key()``). The first table is the one
#: recorded on 2026-12-06 before the change (the session's machine, its key not written down then; CI
#: passed with it). ``Haswell/znver2`` was recorded on 2026-12-07 from commit 3c76ed2, the kernels as
#: written before the change, and the kernels of today give the same on that machine.
NETWORK_DIGESTS = {
    'recorded 2026-12-06, machine not noted': {
        'network/FashionMNIST_400_400.yaml//float32': '3d7b190c35d9b822',
        'network/FashionMNIST_400_400.yaml//float64': '0672bb0987274ee3',
        'network/MNIST_CNN.yaml//float32': '0fdf974a8b883f89',
        'network/MNIST_CNN.yaml//float64': '565c8255a7b14a78',
        'network/MNIST_CNN.yaml/intra=False/float32': 'a860ea27a7beaa2b',
        'network/MNIST_CNN.yaml/intra=False/float64': '810e4d7387ee3b94',
        'network/MNIST_CNN.yaml/warmup=always/float32': '421a17e597d26b77',
        'network/MNIST_CNN.yaml/warmup=always/float64': '1288d6c0fbbfe711',
        'network/paper2020/MNIST_CNN.yaml/variant=paper2020/float32': 'a5eaf5cbc65250c5',
        'network/paper2020/MNIST_CNN.yaml/variant=paper2020/float64': '3217271bfbb88d8f',
    },
    'Haswell/znver2': {
        'network/FashionMNIST_400_400.yaml//float32': 'e05d46e621c2b760',
        'network/FashionMNIST_400_400.yaml//float64': '248bdadde5d23839',
        'network/MNIST_CNN.yaml//float32': '209901d9890222db',
        'network/MNIST_CNN.yaml//float64': '7fd14ca8abd2f80a',
        'network/MNIST_CNN.yaml/intra=False/float32': 'd698106086a308e1',
        'network/MNIST_CNN.yaml/intra=False/float64': '4be6245eeff9d686',
        'network/MNIST_CNN.yaml/warmup=always/float32': 'cbc14d4cfca97503',
        'network/MNIST_CNN.yaml/warmup=always/float64': 'fddacbb77b76d033',
        'network/paper2020/MNIST_CNN.yaml/variant=paper2020/float32': '34c92a7b11bdad0a',
        'network/paper2020/MNIST_CNN.yaml/variant=paper2020/float64': 'ae948ea6fbe876cc',
    },
}


def machine_key() -> str:
    """The BLAS kernel and the host CPU that the whole-network digests depend on, e.g. ``Haswell/znver2``."""
    import llvmlite.binding

    from reference.app.blas import blas_info
    return f"{blas_info()['core']}/{llvmlite.binding.get_host_cpu_name()}"


@compiled_only
def test_every_case_has_a_recorded_digest():
    assert all(set(table) == {k for k in CASES if k.startswith("network/")} for table in NETWORK_DIGESTS.values())
    assert set(DIGESTS) | set(next(iter(NETWORK_DIGESTS.values()))) == set(CASES)


@compiled_only
@pytest.mark.parametrize("case", sorted(k for k in CASES if not k.startswith("network/")))
def test_kernel_outputs_are_bit_for_bit_as_recorded(case):
    assert CASES[case]() == DIGESTS[case]


@compiled_only
@pytest.mark.parametrize("case", sorted(k for k in CASES if k.startswith("network/")))
def test_network_outputs_are_bit_for_bit_as_recorded(case):
    """Equal to this machine's recorded digest; on a machine not recorded, to one recorded elsewhere.

    A machine whose kernel and CPU are not in ``NETWORK_DIGESTS`` and whose GEMM gives new last bits
    skips with its key and digest (record them with ``python tests/test_steps.py`` after checking out the
    commit the table names), it does not fail: the element-wise kernels above are still checked exactly.
    """
    got, key = CASES[case](), machine_key()
    if key in NETWORK_DIGESTS:
        assert got == NETWORK_DIGESTS[key][case]
    elif got not in {table[case] for table in NETWORK_DIGESTS.values()}:
        pytest.skip(f"no digests recorded for BLAS kernel/CPU {key}; this machine gives {got}")


if __name__ == "__main__":  # prints the tables above from the kernels as they are now
    print(f"    {machine_key()!r}:")
    for name in sorted(CASES):
        print(f"    {name!r}: {CASES[name]()!r},")


def test_steps_called_from_python_keep_float32():
    """The plain-Python twins call the steps as Python functions: float32 in, float32 out (no float64)."""
    from reference import steps

    one, zero = np.float32(1), np.float32(0)
    du, u, fired, mem = steps.lif_step(np.float32(0.1), np.float32(0.7), np.float32(-0.2), np.float32(1), zero)
    assert all(isinstance(v, np.float32) for v in (du, u, mem)) and not fired
    assert isinstance(steps.inv_du_clamped(np.float32(0.3), one, one, zero, np.float32(8)), np.float32)
    with np.errstate(divide="ignore"):  # the IEEE division the kernels rely on (reference/_jit.py)
        assert steps.inv_du_clamped(np.float32(0.0), one, one, zero, np.float32(8)) == 8  # du = +0: 1/du = +inf
        assert steps.inv_du_clamped(np.float32(-0.0), one, one, zero, np.float32(8)) == 0  # du = -0: -inf
    assert isinstance(steps.warmup_f(np.float32(2.0), one, np.float32(0.2)), np.float32)


@compiled_only
def test_the_kernels_cache_knows_steps_py():
    """Numba keys a cached kernel on its own file only; ours add the hash of steps.py and _jit.py, so an
    edit of an equation recompiles every kernel that inlines it instead of running stale machine code."""
    from reference import _jit, tsslbp

    assert _jit.CACHE_KNOWS_STEPS, "this Numba has no CacheImpl._locator_classes: see _jit._install_cache_locator"
    kernel = tsslbp._tsslbp_kernel
    locator = kernel._cache._impl._locator
    assert type(locator).__name__ == "StepsAwareLocator"
    assert locator.get_source_stamp()[1] == _jit.STEPS_STAMP == _jit._stamp_of_steps()
