"""tsslbp-reference: TSSL-BP (Zhang & Li, NeurIPS 2020) in NumPy and Numba, written to be read.

Names.  The code uses the names of the paper's equations; readers of the authors' ``functions/tsslbp.py``
will find their variables here (paper-notes section 6):

==================  ====================  ==========================================================
here                authors               meaning
==================  ====================  ==========================================================
``u[k]``            ``mems`` / ``u``      membrane potential before reset
``du[k]``           ``mem_updates``       membrane increment at step k
``s[k]``            ``outputs`` / ``out`` spikes (0/1)
``a[k]``            ``syns_posts``        the neuron's output PSP
``g[m]``            ``grad_delta``        dL/da, the error arriving from the next layer or the loss
``G[k]``            ``grad_a``            sum_m eps[m-k] g[m], the error on a spike at k
``-min(1/du, 8) s`` ``partial_u``         d t_k / d u (inter-neuron), clamped
``-eps/tau_s``      ``partial_a``         d a / d t_k
``c``               ``theta``             the carried intra-neuron term
``delta[k]``        ``grad``              dL/dx, what the layer's weight gradient uses
``1/(4 tau_s)``     ``th``                warm-up switch on the neuron's own PSP
``0.2``             ``a``                 width of the warm-up sigmoid surrogate
``eps[k]``          ``glv.syn_a``         the PSP kernel theta_s (1 - theta_s)^k
==================  ====================  ==========================================================

Where to start: ``reference.neuron`` (forward), ``reference.tsslbp`` (the backward, one function per
dependency type), ``reference.network.Network``, and the lessons in ``tutorials/``.

Threading.  NumPy's OpenBLAS and Numba's OpenMP pools share the cores; by default both spin-wait after
their work, and on a 2-core machine each then steals the other's cores (we measured Numba kernels 2-3x
slower right after a GEMM).  Unless you set them yourself, importing this package before NumPy sets
``OMP_WAIT_POLICY=PASSIVE`` and ``OPENBLAS_THREAD_TIMEOUT=4`` (shortest spin), which brought the MNIST
CNN training step from 5.3x to 3.6x its GEMM floor here (``benchmarks/train_step.py``).  They only change
speed, never results.
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
