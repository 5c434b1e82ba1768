"""Greedy sparse recovery in an orthonormal basis, batched: OMP and normalised IHT.

Both find an s-sparse c with y ~ M c (M = A Psi, Haar wavelets by default) and return
x_hat = clip(Psi c, 0, 1). The sparsity s is tuned per (m, sigma); it is capped at m for
OMP and at m // 2 for IHT (beyond that the support cannot be identified from m numbers).
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterator

import torch
from torch import Tensor

from csbench.baselines.common import SynthesisMap, check_at_least, noise_floor
from csbench.baselines.solvers import LinearMap
from csbench.priors import Prior
from csbench.problem import Problem

SPARSITY_GRID = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]

Atom = Callable[[Tensor], Tensor]              # j (B,) -> M_b e_{j_b} (B, m)
OMPPath = tuple[Tensor, Tensor, Tensor]        # support (B, K), R (B, K, K), Q^T y (B, K)


def _batched_dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=-1)


def synthesis_parts(synthesis: SynthesisMap) -> Iterator[tuple[slice, Atom, LinearMap]]:
    """(instances, atom, adjoint) of M = A Psi for each of its cache-sized chunks
    (`SynthesisMap.parts`): j -> M_b e_{j_b} and r -> M^T r. With dense A an atom is a gathered
    column of the chunk's M, O(m), and a chunk's M and Q stay in cache through the greedy loop;
    otherwise M is applied to the one-hot e_j, O(m n), with the operator's products and the fast
    transform."""
    problem = synthesis.problem
    for part in synthesis.parts():
        if part.matrices is None:
            def atom(index: Tensor, forward: LinearMap = part.forward) -> Tensor:
                return forward(torch.nn.functional.one_hot(index, problem.n).to(problem.y.dtype))
        else:
            rows = torch.arange(part.matrices.shape[0], device=part.matrices.device)
            def atom(index: Tensor, matrices: Tensor = part.matrices, rows: Tensor = rows) -> Tensor:
                return matrices[rows, :, index]
        yield part.index, atom, part.adjoint


def omp_path(atom: Atom, adjoint: LinearMap, y: Tensor, sparsity: int, n: int,
             floor: Tensor | float = 0.0) -> OMPPath:
    """Orthogonal matching pursuit (Pati et al. 1993) for all B instances at once, up to `sparsity` atoms.

    Step k: pick j_k = argmax_j |(M^T r)_j| over unselected atoms, orthogonalise the atom
    a = M e_{j_k} against the chosen ones, v = a - Q (Q^T a) twice (classical Gram-Schmidt with
    reorthogonalisation; Q^T kept as rows (B, k, m), so each product streams contiguous rows),
    q = v / ||v||, and project the residual r = y - M c off it. An instance stops once
    ||r_b|| <= floor_b; its later steps add nothing (R_kk = 1, (Q^T y)_k = 0). Returns the
    K <= sparsity steps taken as (support, R, Q^T y), M_S = Q R. No step depends on `sparsity`:
    a run with fewer atoms is the first steps of this one.
    """
    batch = y.shape[0]
    floor = torch.as_tensor(floor, dtype=y.dtype, device=y.device).expand(batch)
    residual = y.clone()
    basis_q = y.new_zeros(batch, sparsity, y.shape[1])
    upper_r = y.new_zeros(batch, sparsity, sparsity)
    projections = y.new_zeros(batch, sparsity)
    support = torch.zeros(batch, sparsity, dtype=torch.long, device=y.device)
    selected = torch.zeros(batch, n, dtype=torch.bool, device=y.device)
    active = residual.norm(dim=1) > floor
    rows = torch.arange(batch, device=y.device)
    steps = 0
    for k in range(sparsity):
        if not bool(active.any()):
            break
        steps = k + 1
        scores = adjoint(residual).abs().masked_fill(selected, -1.0)
        index = scores.argmax(dim=1)
        column = atom(index)
        chosen = basis_q[:, :k]                                                  # Q^T (B, k, m)
        coefficients = torch.bmm(chosen, column[:, :, None])
        vector = torch.baddbmm(column[:, None], coefficients.mT, chosen, alpha=-1)
        again = torch.bmm(chosen, vector.mT)
        vector = torch.baddbmm(vector, again.mT, chosen, alpha=-1)[:, 0]
        coefficients = (coefficients + again)[..., 0]
        length = vector.norm(dim=1)
        usable = active & (length > 1e-6 * column.norm(dim=1))
        q = torch.where(usable[:, None], vector / length.clamp_min(1e-30)[:, None], torch.zeros_like(vector))
        projection = _batched_dot(q, residual)
        basis_q[:, k] = q
        upper_r[:, :k, k] = torch.where(usable[:, None], coefficients, torch.zeros_like(coefficients))
        upper_r[:, k, k] = torch.where(usable, length, torch.ones_like(length))
        projections[:, k] = projection
        support[:, k] = index
        selected[rows, index] |= usable
        residual = residual - projection[:, None] * q
        active = usable & (residual.norm(dim=1) > floor)
    return support[:, :steps], upper_r[:, :steps, :steps], projections[:, :steps]


def omp_coefficients(path: OMPPath, n: int, sparsity: int) -> Tensor:
    """c (B, n) of OMP with `sparsity` atoms from a path at least that long: the least-squares fit on
    the first k = min(sparsity, K) atoms, R_{:k,:k} c_S = (Q^T y)_{:k}."""
    support, upper_r, projections = path
    values = torch.linalg.solve_triangular(upper_r[:, :sparsity, :sparsity], projections[:, :sparsity, None],
                                           upper=True)[..., 0]
    return projections.new_zeros(projections.shape[0], n).scatter_add(1, support[:, :sparsity], values)


def hard_threshold(c: Tensor, sparsity: int) -> Tensor:
    """H_s(c): keep the `sparsity` largest |c_j| of each row, zero the rest."""
    keep = c.abs().topk(sparsity, dim=1).indices
    return torch.zeros_like(c).scatter(1, keep, c.gather(1, keep))


def niht(forward: LinearMap, adjoint: LinearMap, y: Tensor, sparsity: int, *, steps: int = 500,
         tol: float = 1e-6, shrink: float = 2.0, slack: float = 0.01) -> Tensor:
    """Normalised iterative hard thresholding (Blumensath & Davies 2010), batched.

    c+ = H_s(c + mu g),  g = M^T (y - M c),  mu = ||g_S||^2 / ||M g_S||^2 with S the current
    support (the optimal step on S). When the support changes, mu must not exceed
    (1 - slack) ||c+ - c||^2 / ||M (c+ - c)||^2; otherwise it is divided by shrink (1 - slack)
    and c+ recomputed. An instance stops when ||c+ - c|| <= tol ||c+|| or after `steps`.
    Returns c, shape (B, n).
    """
    gradient = adjoint(y)
    c = torch.zeros_like(gradient)
    support = hard_threshold(gradient, sparsity) != 0
    fit = torch.zeros_like(y)  # M c
    active = torch.ones(y.shape[0], 1, dtype=torch.bool, device=y.device)
    tiny = torch.finfo(y.dtype).tiny
    for _ in range(steps):
        gradient = adjoint(y - fit)
        restricted = gradient * support
        mu = (restricted.pow(2).sum(dim=1, keepdim=True)
              / forward(restricted).pow(2).sum(dim=1, keepdim=True).clamp_min(tiny))
        for _ in range(30):
            c_new = hard_threshold(c + mu * gradient, sparsity)
            move = forward(c_new - c)
            bound = (1 - slack) * (c_new - c).pow(2).sum(dim=1, keepdim=True) / move.pow(2).sum(
                dim=1, keepdim=True).clamp_min(tiny)
            new_support = c_new != 0
            too_long = ((new_support != support).any(dim=1, keepdim=True) & (mu > bound))
            if not bool(too_long.any()):
                break
            mu = torch.where(too_long, mu / (shrink * (1 - slack)), mu)
        change = (c_new - c).norm(dim=1, keepdim=True)
        c = torch.where(active, c_new, c)
        fit = torch.where(active, fit + move, fit)
        support = torch.where(active, new_support, support)
        active = active & (change > tol * c_new.norm(dim=1, keepdim=True))
        if not bool(active.any()):
            break
    return c


class _GreedyWavelet(Prior):
    kind = "sparsity"
    parameters = {"s": 64}
    tuning = {"s": SPARSITY_GRID}
    links = ("identity",)
    basis: ClassVar[str] = "wavelet"

    def check_params(self) -> None:
        check_at_least(self, "s", 1)


class OMP(_GreedyWavelet):
    name = "omp"
    description = "orthogonal matching pursuit in the Haar wavelet basis, s atoms or residual <= sigma"

    @staticmethod
    def sparsity(problem: Problem, s: Any) -> int:
        """s capped to [1, min(m, n)]."""
        return max(1, min(int(s), problem.m, problem.n))

    def solve(self, problem: Problem, sparsities: list[int]) -> Tensor:
        """x_hat (G, B, C, H, W) for each sparsity, all from one OMP path to the largest."""
        synthesis = SynthesisMap(problem, self.basis)
        floor = noise_floor(problem)
        c = problem.y.new_zeros(len(sparsities), problem.batch, problem.n)
        for index, atom, adjoint in synthesis_parts(synthesis):
            path = omp_path(atom, adjoint, problem.y[index], max(sparsities), problem.n, floor[index])
            for point, sparsity in enumerate(sparsities):
                c[point, index] = omp_coefficients(path, problem.n, sparsity)
        return synthesis.image(c)

    def recover(self, problem: Problem) -> Tensor:
        return self.solve(problem, [self.sparsity(problem, self.params["s"])])[0]

    def recover_grid(self, problem: Problem, grid: list[dict[str, Any]]) -> list[Tensor | Exception]:
        """Every s of the grid from one path (each answer as `recover` gives it): OMP with s atoms
        is the first s steps of OMP with more."""
        if not grid or any(set(point) != {"s"} for point in grid):
            return super().recover_grid(problem, grid)
        try:
            return list(self.solve(problem, [self.sparsity(problem, point["s"]) for point in grid]))
        except Exception as exc:  # noqa: BLE001 - the runner scores a failed point as not chosen
            return [exc] * len(grid)


class IHT(_GreedyWavelet):
    name = "iht"
    description = "normalised iterative hard thresholding in the Haar wavelet basis, s-sparse"

    def recover(self, problem: Problem) -> Tensor:
        synthesis = SynthesisMap(problem, self.basis)
        sparsity = max(1, min(int(self.params["s"]), problem.m // 2, problem.n))
        c = niht(synthesis.forward, synthesis.adjoint, problem.y, sparsity)
        return synthesis.image(c)
