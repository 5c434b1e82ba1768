"""Batched linear operators and measurement models.

A measurement model draws an operator A (one per instance of a task, shape (B, m, n)
conceptually) and measures   y = f(A x + e)  (phaseless: |A x| + e),   e_i ~ N(0, sigma^2 / m),
so that E||e||^2 = sigma^2 (Bora et al.'s convention with A_ij ~ N(0, 1/m)).
"""
from __future__ import annotations

from typing import Callable, ClassVar

import torch
from torch import Tensor

from csbench.measurements.links import get_link

CACHE_BYTES = 8 << 20  # matrices of about this size stay in cache through an iterative loop


def cache_chunks(batch: int, instance_bytes: int, budget: int | None = None) -> list[slice]:
    """Consecutive, balanced chunks of `batch` instances of `instance_bytes` each, about `budget`
    bytes (CACHE_BYTES) per chunk: an iterative solver run chunk by chunk reads its matrices from cache."""
    budget = CACHE_BYTES if budget is None else budget
    size = max(1, budget // max(1, instance_bytes))
    count = -(-batch // size)
    bounds = [round(i * batch / count) for i in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]


def power_iteration(forward: Callable[[Tensor], Tensor], adjoint: Callable[[Tensor], Tensor], v: Tensor,
                    iterations: int) -> Tensor:
    """||M||_2^2 per problem, shape v.shape[:-1], by power iteration  v <- M^T M v / ||M^T M v||
    from the start v (..., n), each row its own problem (M = A_b, or A J_G(z) for a generator);
    approaches the value from below."""
    v = v / v.norm(dim=-1, keepdim=True)
    value = v.new_zeros(v.shape[:-1])
    for _ in range(iterations):
        w = adjoint(forward(v))
        value = w.norm(dim=-1)
        v = w / value.clamp_min(torch.finfo(v.dtype).tiny).unsqueeze(-1)
    return value


class LinearOperator:
    """A batch of B linear maps R^n -> R^m acting on flattened signals x of shape (..., B, n).

    Subclasses implement `forward` (x -> A x, (..., B, n) -> (..., B, m)) and `adjoint`
    (y -> A^T y); leading dimensions (e.g. restarts) broadcast, so R restarts of B instances
    are one call. `dense` returns the (B, m, n) matrices when they are cheap, else None.
    """

    def __init__(self, n: int, m: int, batch: int):
        self.n, self.m, self.batch = n, m, batch
        self._norms_squared: dict[int, Tensor] = {}  # seeded `norm_squared` values, by iterations

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def adjoint(self, y: Tensor) -> Tensor:
        raise NotImplementedError

    def dense(self) -> Tensor | None:
        return None

    def to(self, device: str | torch.device) -> "LinearOperator":
        return self

    def select(self, index: Tensor) -> "LinearOperator":
        """The operators of the instances `index` (a 1-D integer tensor), as a smaller batch."""
        raise NotImplementedError(f"{type(self).__name__} cannot select instances")

    exact_norm: ClassVar[bool] = False  # True where `norm_squared` is known in closed form

    def norm_squared(self, iterations: int = 50, generator: torch.Generator | None = None) -> Tensor:
        """||A_b||_2^2 per instance, shape (B,): the one place csbench gets it. By power iteration
        on A^T A (from below) unless the operator knows it exactly (`exact_norm`).

        Deterministic: the start vector comes from `generator`, else from a fixed seed (then the
        value is computed once per operator, e.g. once for every tuning-grid point)."""
        if generator is None and iterations in self._norms_squared:
            return self._norms_squared[iterations]
        dense = self.dense()
        start = torch.randn(self.batch, self.n, generator=generator or torch.Generator().manual_seed(0),
                            dtype=torch.float32 if dense is None else dense.dtype).to(self.device)
        if dense is None:
            value = power_iteration(self.forward, self.adjoint, start, iterations)
        else:  # chunk by chunk from cache; instances are independent
            value = torch.cat([power_iteration(part.forward, part.adjoint, start[index], iterations)
                               for index in cache_chunks(self.batch, dense[0].numel() * dense.element_size())
                               for part in (DenseOperator(dense[index]),)])
        if generator is None:
            self._norms_squared[iterations] = value
        return value

    def lipschitz_bound(self, margin: float = 1.05, **power: object) -> Tensor:
        """An upper bound of ||A_b||_2^2 (B,) for step sizes: `norm_squared` (keywords go to it),
        times `margin` when that is a power-iteration estimate, which approaches it from below."""
        value = self.norm_squared(**power)
        return value if self.exact_norm else value * margin

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class DenseOperator(LinearOperator):
    """Explicit matrices A of shape (B, m, n)."""

    def __init__(self, matrices: Tensor):
        batch, m, n = matrices.shape
        super().__init__(n, m, batch)
        self.matrices = matrices

    def forward(self, x: Tensor) -> Tensor:
        """A_b x_rb for x (..., B, n): one batched product per instance, all leading (restart)
        vectors at once, reading each A_b once (as bmm(A, X^T); einsum picks a slower layout)."""
        lead = x.shape[:-2]
        columns = x.reshape(-1, self.batch, self.n).permute(1, 2, 0)           # (B, n, R)
        return torch.bmm(self.matrices, columns).permute(2, 0, 1).reshape(*lead, self.batch, self.m)

    def adjoint(self, y: Tensor) -> Tensor:
        lead = y.shape[:-2]
        rows = y.reshape(-1, self.batch, self.m).transpose(0, 1)               # (B, R, m)
        return torch.bmm(rows, self.matrices).transpose(0, 1).reshape(*lead, self.batch, self.n)

    def forward_instances(self, x: Tensor) -> Tensor:
        """A_b x_br for instance-major x (B, R, n) -> (B, R, m), as bmm(X, A^T): with R vectors per
        A_b on contiguous rows, faster than `forward`'s (R, B, n) layout for small R. (A kept
        contiguous A^T made this product 30% faster alone at m = 400, R = 10, but VAE tasks at
        m = 200 and 400 no faster: 178 vs 182 s over 8 interleaved runs, inside their spread.)"""
        return torch.bmm(x, self.matrices.transpose(1, 2))

    def adjoint_instances(self, y: Tensor) -> Tensor:
        """A_b^T y_br for instance-major y (B, R, m) -> (B, R, n), as bmm(Y, A)."""
        return torch.bmm(y, self.matrices)

    def dense(self) -> Tensor:
        return self.matrices

    @property
    def device(self) -> torch.device:
        return self.matrices.device

    def to(self, device: str | torch.device) -> "DenseOperator":
        return DenseOperator(self.matrices.to(device))

    def select(self, index: Tensor) -> "DenseOperator":
        return DenseOperator(self.matrices[index])


class MeasurementModel:
    """Builds operators for (n, m) and measures signals: y = link(A x + e), e_i ~ N(0, sigma^2/m).

    Class attributes: `name`, `description`, `link` ("identity", "sign" or "abs").
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    link: ClassVar[str] = "identity"

    def effective_m(self, m: int, shape: tuple[int, int, int]) -> int:
        """The number of measurements actually taken when `m` is asked for (some models snap m)."""
        return m

    def operator(self, m: int, shape: tuple[int, int, int], batch: int,
                 generator: torch.Generator) -> LinearOperator:
        raise NotImplementedError

    def measure(self, x: Tensor, operator: LinearOperator, sigma: float,
                generator: torch.Generator) -> Tensor:
        """y = f(A x, e) for flattened x of shape (B, n), e_i ~ N(0, sigma^2 / m), f the model's
        link (links.py: A x + e, |A x| + e, or sign(A x + e))."""
        z = operator.forward(x)
        e = torch.randn(z.shape, generator=generator, dtype=z.dtype) * (sigma / operator.m ** 0.5)
        return get_link(self.link).measure(z, e.to(z.device))


def dottest(operator: LinearOperator, *, generator: torch.Generator | None = None, rtol: float = 1e-4) -> float:
    """The adjoint (dot-product) test  <A x, y> = <x, A^T y>  on random x (B, n) and y (B, m).

    Returns the largest relative mismatch |<A x, y> - <x, A^T y>| / max(|<A x, y>|, |<x, A^T y>|)
    over the batch and raises AssertionError when it exceeds `rtol` (or the shapes are wrong).
    Draws in the dtype of `dense()`, float64 for matrix-free operators; `generator` defaults to
    a fixed seed, so the test is deterministic."""
    generator = generator or torch.Generator().manual_seed(0)
    dense = operator.dense()
    dtype = dense.dtype if dense is not None else torch.float64
    x = torch.randn(operator.batch, operator.n, generator=generator, dtype=dtype).to(operator.device)
    y = torch.randn(operator.batch, operator.m, generator=generator, dtype=dtype).to(operator.device)
    ax, aty = operator.forward(x), operator.adjoint(y)
    if ax.shape != y.shape or aty.shape != x.shape:
        raise AssertionError(f"forward gave {tuple(ax.shape)} for x {tuple(x.shape)} (expected {tuple(y.shape)}), "
                             f"adjoint gave {tuple(aty.shape)} (expected {tuple(x.shape)})")
    lhs, rhs = (ax * y).sum(-1), (x * aty).sum(-1)
    scale = torch.maximum(lhs.abs(), rhs.abs()).clamp_min(torch.finfo(dtype).tiny)
    error = float(((lhs - rhs).abs() / scale).max())
    if not error <= rtol:  # NaN fails too
        raise AssertionError(f"dot-product test: <A x, y> and <x, A^T y> differ by {error:.1e} "
                             f"(relative), more than rtol = {rtol:.0e}")
    return error
