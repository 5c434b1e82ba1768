"""csbench's Lasso and TV solvers against deepinv (a peer library) on the same problems, measured
in the same run: wall seconds until the mean over images of (F(x) - F*) / F* first drops below a
target (1e-4), with F* from cvxpy (Clarabel, float64, tight tolerances).

Problems (issue 9): 32 MNIST test digits, Gaussian A with m = 100 as csbench builds it
(`make_problem`, task mnist/gaussian/lasso-wavelet, sigma = 0.1); both libraries in float32 on
the CPU, one thread, each objective evaluated in float64.

- Lasso in the Haar wavelet basis, lam = 0.001:  min_c 1/2 ||y - A Psi c||^2 + lam ||c||_1.
  csbench: the `lasso-wavelet` prior's own solve (`SynthesisLasso.coefficients`: M = A Psi formed
  chunk by chunk, `lasso_continuation`), with its stopping tolerance (relative duality gap, the
  priors use 1e-5) as the knob and a 10,000-step cap per stage instead of the prior's 300 (the cap
  stops it at a gap of about 3e-3 here).  deepinv: `optim_builder("FISTA", L1Prior, L2)` on
  the explicit M = A Psi (formed once by the same routine; its time is added), step 1/L_b per
  instance (csbench's bound), stock a = 3 momentum, started at M^T y as deepinv does; the knob is
  `max_iter` (early stop off).
- Isotropic TV (Neumann forward differences, as csbench's `total_variation`), lam = 0.02, WITHOUT
  the box 0 <= x <= 1 (deepinv has no box-constrained TV and no prox of TV + box).  csbench's
  solver runs as `tv_solve(..., box=False)` (the same iteration without the projection).  The
  knob is `steps` (tol = 0).  deepinv: FISTA (or PGD, `--tv-iterations`) with `TVPrior`, whose
  prox is deepinv's inner TV denoiser (primal-dual, warm-started across outer iterations); its
  default inner budget (n_it_max 1000 at crit 1e-8) costs about 0.45 s per outer iteration for 4
  images, so the default run caps the inner loop (`--inner`, 20) and the outer loop at 3200
  iterations; a variant that does not reach the target is reported as inf seconds.  Step
  1/max_b L_b (the gradient step takes one scalar); knob `max_iter`.
  deepinv's primal-dual (`--tv-pd`): Chambolle-Pock, `optim_builder("CP", g_first=True)`, on the
  same problem split as min_x L2(A x, y) + lam L12(K x) with K = `TVPrior().nabla` (so the dual
  step is the projection onto the lam-ball, exact), the data term's prox from the LinearPhysics
  wrapping csbench's dense A: "stock CG" is deepinv's own `prox_l2` (conjugate gradient, 50
  iterations at tol 1e-4, warm-started), "exact" overrides `prox_l2` with (I + tau A^T A)^-1 by
  Woodbury and a Cholesky factor of I + tau A A^T per instance (formed inside the timed run).
  Steps tau = sigma = 0.99/sqrt(8) (tau sigma ||nabla||^2 < 1, as deepinv documents; its default
  1, 1 violates it), start x0 = A^T y as deepinv does, dual 0; knob `max_iter` (up to 12,800).
  deepinv's TV (`TVPrior.fn`, and `L12Prior` on `TVPrior.nabla`) is checked at start to equal
  csbench's `total_variation` on the cvxpy references (same isotropic TV, Neumann forward
  differences: zero across the last row / column); every gap is F under csbench's definition at
  each method's own x.  The TV ratio uses the fastest deepinv variant (TVPrior FISTA/PGD or CP).
  A row "csbench TV (box)" times the shipped solver on the box-constrained problem against its own
  cvxpy reference, for information only (not in the ratio).

For each solver the knob is raised (doubled, then bisected to about 5%) until the mean gap is
below the target; the time reported is the best of `--repeats` runs at that knob.  Prints a table
and ends with `ratio: X`, X = min(Lasso ratio, TV ratio), each deepinv's fastest variant's seconds
/ csbench's seconds (> 1: csbench faster on both).

deepinv is not a csbench dependency.  Install it without letting pip replace torch:
    pip install --no-deps deepinv torchmetrics
    pip install einops natsort requests h5py lightning-utilities
deepinv imports torchvision at import time; where no torchvision build matches the installed torch
(e.g. torch 2.13.0+cpu), this script stands in an empty `torchvision` module (deepinv's optim
code used here does not call it).

    python benchmarks/bench_peers.py [--images 32] [--target 1e-4] [--repeats 3] [--tv-pd cg,exact]
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import math
import sys
import time
import types
from typing import Callable

import numpy as np
import torch

from csbench.baselines import tv
from csbench.baselines.common import SynthesisMap, dense_maps, operator_norm_squared
from csbench.baselines.lasso import LassoWavelet
from csbench.datasets import load_dataset
from csbench.runner import Task, make_problem

LASSO_LAM = 0.001
TV_LAM = 0.02


# -- deepinv ----------------------------------------------------------------------------------------

class _EmptyModule(types.ModuleType):
    """A stand-in package whose every attribute is another stand-in (never called here)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return _empty_module(f"{self.__name__}.{name}")


def _empty_module(name: str) -> types.ModuleType:
    if name not in sys.modules:
        module = _EmptyModule(name)
        module.__path__ = []
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        sys.modules[name] = module
    return sys.modules[name]


class _TorchvisionStandIn:
    """Meta-path finder answering `torchvision` and its submodules with empty modules."""

    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _empty_module(spec.name)

    def exec_module(self, module):
        pass


def import_deepinv() -> types.ModuleType:
    """deepinv, or exit with a one-line error when it is not installed."""
    if importlib.util.find_spec("deepinv") is None:
        sys.exit("error: deepinv is not installed: pip install --no-deps deepinv torchmetrics && "
                 "pip install einops natsort requests h5py lightning-utilities")
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or built for another torch ('torchvision::nms does not exist')
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        sys.meta_path.insert(0, _TorchvisionStandIn())
    try:
        import deepinv
    except Exception as exc:  # noqa: BLE001
        sys.exit(f"error: deepinv is installed but does not import: {type(exc).__name__}: {exc}".splitlines()[0])
    return deepinv


def explicit_products(matrices: torch.Tensor, shape: tuple[int, ...]):
    """x -> M x (B, m) and r -> M^T r (B, *shape) on the explicit M (B, m, n), for deepinv's
    LinearPhysics: csbench's own products (`dense_maps`, rows x^T M^T and r^T M). The batched
    matrix-vector form torch.matmul(M, x[..., None]) runs about 10x slower on torch 2.13's CPU build
    (3.5 against 0.33 ms for 32 x 100 x 784): with it, deepinv's Lasso took 21 s here, a ratio
    csbench did not earn."""
    batch = matrices.shape[0]
    forward, adjoint = dense_maps(matrices)
    return (lambda x: forward(x.reshape(batch, -1))), (lambda r: adjoint(r).reshape(batch, *shape))


def deepinv_lasso(dinv, matrices: torch.Tensor, y: torch.Tensor, lipschitz: torch.Tensor, steps: int) -> torch.Tensor:
    """deepinv's FISTA with the L1 prior on the explicit M (B, m, n): c, (B, n)."""
    forward, adjoint = explicit_products(matrices, (matrices.shape[2],))
    physics = dinv.physics.LinearPhysics(A=forward, A_adjoint=adjoint)
    model = dinv.optim.optim_builder(
        iteration="FISTA", prior=dinv.optim.L1Prior(), data_fidelity=dinv.optim.L2(),
        params_algo={"stepsize": [(1.0 / lipschitz)[:, None]] * steps, "lambda": LASSO_LAM, "a": 3}, max_iter=steps,
        early_stop=False, verbose=False)
    with torch.no_grad():
        return model(y, physics)


def deepinv_tv(dinv, matrices: torch.Tensor, y: torch.Tensor, lipschitz: torch.Tensor, steps: int,
               shape: tuple[int, ...], iteration: str, inner: int) -> torch.Tensor:
    """deepinv's proximal gradient (PGD or FISTA) with TVPrior (inner iterations `inner`): x, (B, n)."""
    batch = y.shape[0]
    forward, adjoint = explicit_products(matrices, shape)
    physics = dinv.physics.LinearPhysics(A=forward, A_adjoint=adjoint)
    model = dinv.optim.optim_builder(
        iteration=iteration, prior=dinv.optim.TVPrior(n_it_max=inner), data_fidelity=dinv.optim.L2(),
        params_algo={"stepsize": 1.0 / float(lipschitz.max()), "lambda": TV_LAM, "a": 3}, max_iter=steps,
        early_stop=False, verbose=False)
    with torch.no_grad():
        return model(y, physics).reshape(batch, -1)


def deepinv_tv_pd(dinv, matrices: torch.Tensor, y: torch.Tensor, steps: int, shape: tuple[int, ...],
                  prox: str) -> torch.Tensor:
    """deepinv's primal-dual (Chambolle-Pock, `optim_builder("CP", g_first=True)`) on
    min_x 1/2 ||A x - y||^2 + lam ||nabla x||_{1,2}: K = TVPrior().nabla, the prior L12Prior over
    the difference axis (its conjugate's prox: the projection onto the lam-ball), the data term L2
    with the prox of the LinearPhysics (`prox="cg"`: deepinv's stock conjugate gradient, 50
    iterations at tol 1e-4, warm-started at its argument; `prox="exact"`: (I + tau A^T A)^-1 by
    Woodbury with a Cholesky factor of I + tau A A^T per instance, formed inside the timed run).
    Steps tau = sigma = 0.99 / sqrt(8) (tau sigma ||nabla||^2 < 1; deepinv's defaults 1, 1 break
    it); start x0 = z0 = A^T y (deepinv's), dual u0 = 0.  Returns x, (B, n)."""
    batch = y.shape[0]
    n = matrices.shape[2]
    forward, adjoint = explicit_products(matrices, shape)

    if prox == "exact":
        class ExactProx(dinv.physics.LinearPhysics):
            """The same A, with the exact prox of gamma/2 ||A x - y||^2."""
            factors: dict = {}

            def prox_l2(self, z, y, gamma, **kwargs):
                gamma = float(gamma)
                if gamma not in self.factors:
                    gram = torch.eye(matrices.shape[1], dtype=matrices.dtype).add(
                        torch.matmul(matrices, matrices.transpose(1, 2)), alpha=gamma)
                    self.factors[gamma] = torch.linalg.cholesky(gram)
                w = z.reshape(batch, n) + gamma * adjoint(y).reshape(batch, n)
                v = torch.cholesky_solve(forward(w)[..., None], self.factors[gamma])
                return (w - gamma * adjoint(v[..., 0]).reshape(batch, n)).reshape(z.shape)

        physics = ExactProx(A=forward, A_adjoint=adjoint)
    else:
        physics = dinv.physics.LinearPhysics(A=forward, A_adjoint=adjoint)
    tv_prior = dinv.optim.TVPrior()
    step = 0.99 / math.sqrt(8.0)

    def init(y, physics):
        x0 = physics.A_adjoint(y)
        return {"est": (x0, x0.clone(), torch.zeros_like(tv_prior.nabla(x0)))}

    model = dinv.optim.optim_builder(
        iteration="CP", prior=dinv.optim.L12Prior(l2_axis=-1), data_fidelity=dinv.optim.L2(), g_first=True,
        params_algo={"stepsize": step, "stepsize_dual": step, "lambda": TV_LAM, "beta": 1.0,
                      "K": tv_prior.nabla, "K_adjoint": tv_prior.nabla_adjoint},
        max_iter=steps, early_stop=False, verbose=False, custom_init=init)
    with torch.no_grad():
        return model(y, physics).reshape(batch, -1)


# -- csbench -----------------------------------------------------------------------------------------

def csbench_lasso(problem, tol: float) -> torch.Tensor:
    """The lasso-wavelet prior's solve at relative duality gap `tol`: c, (B, n)."""
    prior = type("LassoWaveletBench", (LassoWavelet,), {"tol": tol, "steps": 10000})()
    return prior.coefficients(problem, [LASSO_LAM])[1][0]


# -- objectives and references ------------------------------------------------------------------------

def lasso_objective(matrices: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    residual = y - np.einsum("bmn,bn->bm", matrices, c)
    return 0.5 * (residual ** 2).sum(1) + LASSO_LAM * np.abs(c).sum(1)


def tv_objective(a: np.ndarray, y: np.ndarray, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    residual = y - np.einsum("bmn,bn->bm", a, x)
    variation = tv.total_variation(torch.from_numpy(x).reshape(-1, *shape)).numpy()
    return 0.5 * (residual ** 2).sum(1) + TV_LAM * variation


def cvxpy_references(a: np.ndarray, matrices: np.ndarray, y: np.ndarray, shape: tuple[int, ...]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Lasso c*, TV x*, box-constrained TV x*) per instance, by Clarabel in float64."""
    import cvxpy as cp

    _, height, width = shape
    settings = dict(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11,
                    tol_ktratio=1e-9, max_iter=500)

    def tv_term(x):
        image = cp.reshape(x, (height, width), order="C")
        dv = image[1:, :] - image[:-1, :]      # (H-1, W)
        dh = image[:, 1:] - image[:, :-1]      # (H, W-1)
        inner = cp.norm(cp.vstack([cp.vec(dv[:, :-1], order="C"), cp.vec(dh[:-1, :], order="C")]), 2, axis=0)
        return cp.sum(inner) + cp.norm1(dh[-1, :]) + cp.norm1(dv[:, -1])

    lasso, free, boxed = (np.zeros((y.shape[0], a.shape[2])) for _ in range(3))
    for b in range(y.shape[0]):
        c = cp.Variable(a.shape[2])
        cp.Problem(cp.Minimize(0.5 * cp.sum_squares(y[b] - matrices[b] @ c) + LASSO_LAM * cp.norm1(c))
                   ).solve(**settings)
        lasso[b] = c.value
        x = cp.Variable(a.shape[2])
        fit = 0.5 * cp.sum_squares(y[b] - a[b] @ x) + TV_LAM * tv_term(x)
        cp.Problem(cp.Minimize(fit)).solve(**settings)
        free[b] = x.value
        cp.Problem(cp.Minimize(fit), [x >= 0, x <= 1]).solve(**settings)
        boxed[b] = np.clip(x.value, 0, 1)
    return lasso, free, boxed


# -- time to target ------------------------------------------------------------------------------

def timed(run: Callable[[float], torch.Tensor], knob: float) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    out = run(knob)
    return time.perf_counter() - start, out


def time_to_target(run: Callable[[float], torch.Tensor], gap: Callable[[torch.Tensor], float], *,
                   target: float, repeats: int, first: float, tighten: Callable[[float], float],
                   between: Callable[[float, float], float | None], limit: float
                   ) -> tuple[float, float, float]:
    """The knob at which the mean gap first drops below `target` (raised by `tighten` from `first`
    until it does, then refined by `between` on the last interval), and the best of `repeats` wall
    seconds there. Returns (seconds, knob, gap); seconds is inf when `limit` is reached first."""
    loose, knob = None, first
    while True:
        _, out = timed(run, knob)
        value = gap(out)
        if value < target:
            break
        if knob == limit:
            return math.inf, knob, value
        loose, knob = knob, tighten(knob)
    tight, tight_gap = knob, value
    while loose is not None and (middle := between(loose, tight)) is not None:
        _, out = timed(run, middle)
        value = gap(out)
        if value < target:
            tight, tight_gap = middle, value
        else:
            loose = middle
    seconds = min(timed(run, tight)[0] for _ in range(repeats))
    return seconds, tight, tight_gap


def iterations(first: int, limit: int) -> dict:
    """Knob settings for an iteration budget: doubled, then bisected to about 5%."""
    def between(lo, hi):
        middle = (lo + hi) // 2
        return middle if hi - lo > max(1, 0.05 * hi) else None
    return dict(first=first, tighten=lambda k: min(2 * k, limit), between=between, limit=limit)


def tolerances(first: float, limit: float) -> dict:
    """Knob settings for a stopping tolerance: divided by 2, then bisected (geometrically) to about 10%."""
    def between(lo, hi):
        return math.sqrt(lo * hi) if lo / hi > 1.1 else None
    return dict(first=first, tighten=lambda t: max(t / 2, limit), between=between, limit=limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--target", type=float, default=1e-4, help="mean relative objective gap")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at the chosen budget (best)")
    parser.add_argument("--inner", default="20", help="deepinv TVPrior inner iteration caps to try "
                        "(its default, 1000 at crit 1e-8, costs about 0.45 s per outer iteration for 4 images)")
    parser.add_argument("--tv-iterations", default="FISTA", help="deepinv iterations for TV (FISTA, PGD)")
    parser.add_argument("--tv-pd", default="cg,exact", help="deepinv primal-dual (CP) variants for TV: the "
                        "data term's prox by deepinv's stock conjugate gradient (cg) or exact (exact); '' for none")
    args = parser.parse_args()
    dinv = import_deepinv()
    torch.set_num_threads(1)

    x = load_dataset("mnist").split("test", args.images)
    problem = make_problem(x, Task("mnist", "gaussian", "lasso-wavelet", 100, 0.1, 0), "test", "cpu")
    shape = problem.shape
    a = problem.operator.dense()
    lipschitz = operator_norm_squared(problem)
    synthesis = SynthesisMap(problem, "wavelet")
    start = time.perf_counter()
    matrices = synthesis.basis.analyze(a)                    # M = A Psi, (B, m, n), float32
    forming = time.perf_counter() - start
    y = problem.y
    a64, m64, y64 = a.double().numpy(), matrices.double().numpy(), y.double().numpy()

    start = time.perf_counter()
    ref_lasso, ref_tv, ref_box = cvxpy_references(a64, m64, y64, shape)
    f_lasso = lasso_objective(m64, y64, ref_lasso)
    f_tv = tv_objective(a64, y64, ref_tv, shape)
    f_box = tv_objective(a64, y64, ref_box, shape)
    print(f"{args.images} MNIST test digits, Gaussian A, m = {y.shape[1]}, "
          f"sigma = 0.1, {y.dtype}, {torch.get_num_threads()} thread; cvxpy references "
          f"{time.perf_counter() - start:.1f} s; target mean (F - F*)/F* < {args.target:g}")
    print(f"deepinv {dinv.__version__}, torch {torch.__version__}")
    # deepinv's TV (TVPrior.fn, and L12Prior on TVPrior.nabla as its primal-dual splits it) against
    # csbench's total_variation on the references: the same isotropic TV, Neumann forward differences.
    images = torch.from_numpy(ref_tv).reshape(-1, *shape)
    ours = tv.total_variation(images)
    theirs = dinv.optim.TVPrior().fn(images)
    split = dinv.optim.L12Prior(l2_axis=-1).fn(dinv.optim.TVPrior().nabla(images))
    mismatch = float(max((theirs - ours).abs().max(), (split - ours).abs().max()) / ours.abs().max())
    print(f"deepinv TV vs csbench TV at the references: max relative difference {mismatch:.1e}")
    if mismatch > 1e-10:
        sys.exit("error: deepinv's TV differs from csbench's")

    def lasso_gap(c: torch.Tensor) -> float:
        return float(np.mean(lasso_objective(m64, y64, c.double().numpy()) / f_lasso - 1))

    def tv_gap(out: torch.Tensor, reference=f_tv) -> float:
        return float(np.mean(tv_objective(a64, y64, out.double().reshape(len(y64), -1).numpy(), shape)
                             / reference - 1))

    def measure(name: str, solver: str, run, gap, knob: dict, label: Callable[[float], str],
                extra: float = 0.0) -> float:
        seconds, setting, value = time_to_target(run, gap, target=args.target, repeats=args.repeats, **knob)
        seconds += extra
        print(f"  {name:<10} {solver:<34} {seconds:8.3f} s  {label(setting):<16} gap {value:.1e}", flush=True)
        return seconds

    print(f"{'problem':<12} {'solver':<34} {'seconds':>10}  {'budget':<16} mean gap")
    lasso_cs = measure("Lasso", "csbench lasso-wavelet (continuation)", lambda t: csbench_lasso(problem, t),
                       lasso_gap, tolerances(0.1, 1e-8), lambda t: f"tol {t:.1e}")
    lasso_di = measure("Lasso", "deepinv FISTA on A Psi (+ forming)",
                       lambda k: deepinv_lasso(dinv, matrices, y, lipschitz, int(k)),
                       lasso_gap, iterations(100, 100000), lambda k: f"{int(k)} iterations", extra=forming)
    tv_cs = measure("TV", "csbench Chambolle-Pock (no box)",
                    lambda k: tv.tv_solve(problem, [TV_LAM], steps=int(k), tol=0.0, box=False)[0],
                    tv_gap, iterations(100, 100000), lambda k: f"{int(k)} iterations")
    tv_peers: dict[str, float] = {}
    for inner in (int(v) for v in args.inner.split(",")):
        for iteration in args.tv_iterations.split(","):
            name = f"deepinv {iteration} + TVPrior(n_it_max={inner})"
            tv_peers[name] = measure(
                "TV", name, lambda k, it=iteration, n=inner: deepinv_tv(dinv, a, y, lipschitz, int(k), shape, it, n),
                tv_gap, iterations(50, 3200), lambda k: f"{int(k)} iterations")
    for prox in (v for v in args.tv_pd.split(",") if v):
        name = f"deepinv CP (nabla), {'exact' if prox == 'exact' else 'stock CG'} prox"
        tv_peers[name] = measure(
            "TV", name, lambda k, p=prox: deepinv_tv_pd(dinv, a, y, int(k), shape, p),
            tv_gap, iterations(100, 12800), lambda k: f"{int(k)} iterations")
    tv_best = min(tv_peers, key=tv_peers.get)
    tv_di = tv_peers[tv_best]
    measure("TV (box)", "csbench tv_solve (shipped, box)",
            lambda k: tv.tv_solve(problem, [TV_LAM], steps=int(k), tol=0.0)[0],
            lambda out: tv_gap(out, f_box), iterations(100, 100000), lambda k: f"{int(k)} iterations")

    lasso_ratio, tv_ratio = lasso_di / lasso_cs, tv_di / tv_cs
    print(f"deepinv / csbench seconds: Lasso {lasso_ratio:.2f}x, TV "
          f"{'deepinv did not reach the target' if math.isinf(tv_ratio) else f'{tv_ratio:.2f}x ({tv_best})'} "
          f"(M = A Psi formed in {forming:.3f} s, counted for deepinv)")
    print(f"ratio: {min(lasso_ratio, tv_ratio):.2f}")


if __name__ == "__main__":
    main()
