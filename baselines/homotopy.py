"""The Lasso's exact minimisers at a grid of lam values, for B dense problems at once, by homotopy
(LARS with the Lasso modification, Efron et al. 2004):

    c(lam) = argmin_c 1/2 ||y_b - M_b c||^2 + lam ||c||_1,    M_b (m, n), in float64.

On an active set A with signs s, the optimality conditions M_A^T (y - M_A c_A) = lam s and
|w_j| <= lam off A, w = M^T (y - M c), give a path linear in lam:

    c_A(lam) = e - lam d,   e = G^-1 M_A^T y,   d = G^-1 s,   G = M_A^T M_A,
    w(lam)   = p + lam a,   p = M^T y - H_A e,  a = H_A d,    H_A = M^T M_A,

followed down from above ||M^T y||_inf (c = 0) to the next event: an inactive w_j reaches +-lam
(j joins A with that sign), an active c_j reaches 0 (j leaves A) or a grid value is reached (c is
recorded). Each instance follows its own path in K = min(m, n) slots, one event per loop: G^-1 is
bordered when j joins (G^-1 + v v^T / sigma, v = (G^-1 g, -1), g = M_A^T M_j, sigma = M_j^T M_j -
g^T G^-1 g) and downdated when the variable of slot k leaves (G^-1 - q q^T / q_k, q = G^-1 e_k),
e and d following in O(K), and recomputed (Cholesky) where G_A (e, d) = (M_A^T y, s) fails by more
than REFRESH. A variable that just left may come back only with the other sign (its w_j = s_j lam
there); one that just joined may not leave at once. An instance whose active Gram matrix turns
singular, or that runs past the event cap, keeps its last point for the grid values left:
`lasso_grid` polishes every answer whose duality gap is above the tolerance.
"""
from __future__ import annotations

import torch
from torch import Tensor

from csbench.baselines.common import dense_maps
from csbench.baselines.solvers import fista_gap, lasso_gap

REFRESH = 1e-7    # |G_A d - s|_inf, |G_A e - M_A^T y|_inf / ||M^T y||_inf above which G^-1 is recomputed
SINGULAR = 1e-10  # sigma / M_j^T M_j below which a joining column counts as dependent on A's
EVENTS = 10       # event cap per instance: EVENTS * K + 2 G
TERMS = 32        # rank-one terms kept apart from G^-1 before they are added to it (one pass)


class Homotopy:
    """The paths of B instances to the grid `lams` (descending). Per instance: H = M^T M, M^T y
    (padded with a zero for empty slots, whose variable is n), the current lam, next grid value and
    the variable that last changed; per slot its variable, sign (0 when empty), row of H, e and d.
    G^-1 = base + sum_t weight_t v_t v_t^T: the last rank-one terms are kept apart (TERMS at most),
    so an event reads G^-1 once (G^-1 g for a join) and e, d follow by O(K) updates."""

    def __init__(self, matrices: Tensor, y: Tensor, lams: Tensor):
        batch, m, n = matrices.shape
        self.n, self.slots, self.lams = n, min(m, n), lams
        self.gram = torch.bmm(matrices.transpose(1, 2), matrices)
        self.correlation = torch.nn.functional.pad(torch.bmm(y[:, None], matrices)[:, 0], (0, 1))
        self.scale = self.correlation.abs().amax(dim=1)
        self.rows = matrices.new_zeros(batch, self.slots, n)
        self.base = matrices.new_zeros(batch, self.slots, self.slots)
        self.vectors = matrices.new_zeros(batch, self.slots, TERMS)
        self.weights = matrices.new_zeros(batch, TERMS)
        self.ed = matrices.new_zeros(batch, self.slots, 2)        # e, d
        self.signs = matrices.new_zeros(batch, self.slots)
        self.index = torch.full((batch, self.slots), n, dtype=torch.long, device=matrices.device)
        self.lam = 2 * torch.maximum(self.scale, lams[0]) + 1        # c = 0 here
        self.next = torch.zeros(batch, dtype=torch.long, device=matrices.device)
        self.last = torch.full_like(self.next, n)
        self.last_sign = self.signs.new_zeros(batch)
        self.ids = torch.arange(batch, device=matrices.device)
        self.used, self.terms = 1, 0       # slots that some instance uses (and one free), terms kept apart
        self.out = matrices.new_zeros(len(lams), batch, n + 1)

    def keep(self, mask: Tensor) -> None:
        """Only the instances `mask` go on."""
        for name in ("correlation", "scale", "rows", "base", "vectors", "weights", "ed", "signs", "index", "lam",
                     "next", "last", "last_sign", "ids"):
            setattr(self, name, getattr(self, name)[mask])

    def inverse_times(self, x: Tensor) -> Tensor:
        """G^-1 x for x (B, used, k)."""
        used, terms = self.used, self.terms
        vectors = self.vectors[:, :used, :terms]
        inner = torch.bmm(vectors.transpose(1, 2), x) * self.weights[:, :terms, None]
        return torch.baddbmm(torch.bmm(self.base[:, :used, :used], x), vectors, inner)

    def flush(self) -> None:
        """The terms added to the base (empty slots' rows and columns zeroed), e and d recomputed."""
        used = self.used
        base = self.base[:, :used, :used]
        base.baddbmm_(self.vectors[:, :used] * self.weights[:, None], self.vectors[:, :used].transpose(1, 2))
        empty = self.signs[:, :used] == 0
        base.masked_fill_(empty[:, None] | empty[:, :, None], 0)
        self.vectors.zero_()
        self.terms = 0
        self.ed[:, :used] = torch.bmm(base, self.right_sides())

    def right_sides(self) -> Tensor:
        """M_A^T y and s on the slots, (B, used, 2)."""
        return torch.stack([self.correlation.gather(1, self.index[:, :self.used]), self.signs[:, :self.used]], 2)

    def drift(self, p: Tensor, a: Tensor) -> Tensor:
        """max(|G_A d - s|_inf, |G_A e - M_A^T y|_inf / ||M^T y||_inf) per instance (= |a_A - s|, |p_A|)."""
        signs, index = self.signs[:, :self.used], self.index[:, :self.used].clamp(max=self.n - 1)
        error = torch.maximum((a.gather(1, index) - signs).abs(), p.gather(1, index).abs() / self.scale[:, None])
        return torch.where(signs != 0, error, 0).amax(dim=1)

    def refresh(self, which: Tensor) -> None:
        """G^-1 (after a flush) recomputed by Cholesky for the instances `which`, and their e, d."""
        used = self.used
        empty = self.signs[which, :used] == 0
        outside = empty[:, None] | empty[:, :, None]
        columns = self.index[which, None, :used].clamp(max=self.n - 1).expand(-1, used, -1)
        gram = self.rows[which, :used].gather(2, columns)
        gram = torch.where(outside, torch.eye(used, dtype=gram.dtype, device=gram.device), gram)
        inverse = torch.where(outside, 0, torch.cholesky_inverse(torch.linalg.cholesky_ex(gram)[0]))
        self.base[which, :used, :used] = inverse
        self.ed[which, :used] = torch.bmm(inverse, self.right_sides()[which])

    def direction(self) -> tuple[Tensor, Tensor]:
        """p, a on the variables: w(lam) = p + lam a."""
        pa = torch.bmm(self.ed[:, :self.used].transpose(1, 2), self.rows[:, :self.used])
        return self.correlation[:, :self.n] - pa[:, 0], pa[:, 1]

    def entering(self, p: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        """The largest lam' <= lam where an inactive |w_j(lam')| = lam', and its j: the roots
        p_j / (1 - a_j) (w_j = lam'), -p_j / (1 + a_j) (w_j = -lam') in (0, lam], or lam where
        |w_j(lam)| >= lam already. The variable that just left, at w_j = s_j lam, may only come
        back at -s_j lam."""
        lam = self.lam[:, None]
        flags = torch.zeros_like(self.correlation, dtype=torch.bool)
        left = flags.scatter(1, self.last[:, None], True)[:, :self.n]
        roots = torch.stack([torch.where(left & (self.last_sign[:, None] > 0), -torch.inf, p / (1 - a)),
                             torch.where(left & (self.last_sign[:, None] < 0), -torch.inf, -p / (1 + a))])
        roots = torch.where((roots > 0) & (roots <= lam), roots, -torch.inf).amax(dim=0)
        roots = torch.where(((p + lam * a).abs() >= lam) & ~left, lam, roots)
        inactive = (~flags).scatter_(1, self.index[:, :self.used], False)
        return torch.where(inactive[:, :self.n], roots, -torch.inf).max(dim=1)

    def leaving(self) -> tuple[Tensor, Tensor]:
        """The largest lam' <= lam where an active c_k(lam') = e_k - lam' d_k = 0 (c_k moving to 0:
        s_k d_k < 0), and its slot k. The variable that just joined may not leave."""
        e, d = self.ed[:, :self.used].unbind(2)
        signs = self.signs[:, :self.used]
        moving = (signs * d < 0) & (self.index[:, :self.used] != self.last[:, None])
        return torch.where(moving, torch.minimum(e / d, self.lam[:, None]), -torch.inf).max(dim=1)

    def point(self) -> Tensor:
        """c(lam) on the n variables and the padding one, (B, n + 1)."""
        e, d = self.ed[:, :self.used].unbind(2)
        c = e - self.lam[:, None] * d
        return c.new_zeros(c.shape[0], self.n + 1).scatter_(1, self.index[:, :self.used], c)

    def record(self, which: Tensor, *, rest: bool = False) -> None:
        """c(lam) as the answer of the instances `which` at their next grid value (all left if `rest`)."""
        if bool(which.any()):
            c = self.point()
            for g in range(len(self.lams)):
                chosen = which & ((self.next <= g) if rest else (self.next == g))
                self.out[g, self.ids[chosen]] = c[chosen]

    def step(self) -> Tensor:
        """Go to every instance's next event; returns the instances that are done."""
        p, a = self.direction()
        stale = self.drift(p, a) > REFRESH
        if bool(stale.any()):
            self.flush()
            self.refresh(stale)
            p, a = self.direction()
            stale = self.drift(p, a) > REFRESH
        lam_in, joining = self.entering(p, a)
        lam_out, slot_out = self.leaving()
        lam_grid = self.lams[self.next]
        grid = lam_grid >= torch.maximum(lam_in, lam_out)
        self.lam = torch.where(grid, lam_grid, torch.maximum(lam_in, lam_out))
        self.record(grid & ~stale)
        self.next += grid & ~stale
        leave = ~grid & ~stale & (lam_out >= lam_in)
        broken = stale | self.update(~grid & ~stale & (lam_out < lam_in), joining, leave, slot_out,
                                     p + self.lam[:, None] * a)
        self.record(broken, rest=True)
        return broken | (self.next == len(self.lams))

    def update(self, join: Tensor, joining: Tensor, leave: Tensor, slot_out: Tensor, w: Tensor) -> Tensor:
        """Variables `joining` join (`join`) with the sign of w, those of `slot_out` leave (`leave`);
        returns the instances where that failed (no free slot, a singular G)."""
        free = self.signs == 0
        slot_in = free.int().argmax(dim=1)
        broken = join & ~free.any(dim=1)
        join = join & ~broken
        if bool(join.any()):
            self.used = min(self.slots, max(self.used, int(slot_in[join].max()) + 2))
        used, batch = self.used, torch.arange(join.shape[0], device=join.device)
        g = self.rows[:, :used].gather(2, joining[:, None, None].expand(-1, used, 1))
        column = self.base.new_zeros(join.shape[0], used, 1)
        column[batch, slot_out.clamp(max=used - 1), 0] = 1
        uq = self.inverse_times(torch.cat([g, column], dim=2))       # G^-1 g and G^-1 e_k
        u, q = uq[..., 0], uq[..., 1]
        ed = self.ed[:, :used]
        h = self.gram[self.ids, joining, joining]
        sigma = h - (g[..., 0] * u).sum(dim=1)
        q_k = q[batch, slot_out]
        broken |= (join & ~(sigma > SINGULAR * h)) | (leave & ~(q_k > 0))
        join, leave = join & ~broken, leave & ~broken
        sign = torch.sign(w.gather(1, joining[:, None])[:, 0])
        u[batch, slot_in.clamp(max=used - 1)] -= 1                  # v = (G^-1 g, -1)
        # join: e, d += v (g^T (e, d) - (M_j^T y, s_j)) / sigma;  leave: e, d -= q (e_k, d_k) / q_k
        new = torch.stack([self.correlation[batch, joining], sign], 1)
        shift_in = ((g * ed).sum(dim=1) - new) / sigma[:, None]
        shift_out = ed[batch, slot_out] / q_k[:, None]
        vector = torch.where(join[:, None], u, torch.where(leave[:, None], q, 0))
        shift = torch.where(join[:, None], shift_in, torch.where(leave[:, None], -shift_out, 0))
        ed += vector[..., None] * shift[:, None]
        self.vectors[:, :used, self.terms] = vector
        self.weights[:, self.terms] = torch.where(join, 1 / sigma, torch.where(leave, -1 / q_k, 0))
        self.terms += 1
        self.last = torch.where(join, joining, torch.where(leave, self.index[batch, slot_out], self.last))
        self.last_sign = torch.where(leave, self.signs[batch, slot_out], self.last_sign)
        self.place(join, slot_in, joining, sign)
        self.remove(leave, slot_out)
        if self.terms == TERMS:
            self.flush()
        return broken

    def place(self, join: Tensor, slot: Tensor, variable: Tensor, sign: Tensor) -> None:
        """Variables join in their slots."""
        which, slot, variable = join.nonzero()[:, 0], slot[join], variable[join]
        self.rows[which, slot] = self.gram[self.ids[which], variable]
        self.signs[which, slot] = sign[which]
        self.index[which, slot] = variable

    def remove(self, leave: Tensor, slot: Tensor) -> None:
        """The variables of `slot` leave (their e, d are zeroed)."""
        which, slot = leave.nonzero()[:, 0], slot[leave]
        self.ed[which, slot] = 0
        self.signs[which, slot] = 0
        self.index[which, slot] = self.n


def lasso_homotopy(matrices: Tensor, y: Tensor, lams: list[float]) -> Tensor:
    """c(lam) for each lam of `lams` (any order, > 0) and instance: (G, B, n) in float64.
    matrices: (B, m, n); y: (B, m). Each instance's path is its own (batch-independent)."""
    matrices, y = matrices.double(), y.double()
    grid = torch.tensor(lams, dtype=torch.float64, device=y.device)
    order = torch.argsort(grid, descending=True)
    path = Homotopy(matrices, y, grid[order])
    for _ in range(EVENTS * path.slots + 2 * len(lams)):
        if path.ids.numel() == 0:
            break
        done = path.step()
        if bool(done.any()):
            path.keep(~done)
    if path.ids.numel():                 # the event cap: the last points stand
        path.record(torch.ones_like(path.ids, dtype=torch.bool), rest=True)
    out = torch.empty_like(path.out)
    out[order] = path.out
    return out[..., :-1]


def lasso_grid(matrices: Tensor, y: Tensor, lams: list[float], lipschitz: Tensor, *, tol: float,
               steps: int) -> Tensor:
    """c(lam) for the grid `lams` and B dense problems, (G, B, n) in y's dtype: the homotopy's
    answers, where one's relative duality gap (float64) exceeds `tol` polished by FISTA from it
    (`fista_gap`, `steps` at most). lipschitz: (B,) bounds on ||M_b||_2^2."""
    matrices64, y64 = matrices.double(), y.double()
    c = lasso_homotopy(matrices64, y64, lams)
    lam = torch.tensor(lams, dtype=torch.float64, device=y.device)[:, None].expand(-1, y.shape[0])
    primal, gap = lasso_gap(*dense_maps(matrices64), y64, c, lam[..., None])
    loose = gap > tol * primal
    which = loose.any(dim=0)[:, 0].nonzero()[:, 0]
    if which.numel():
        polished = fista_gap(*dense_maps(matrices64[which]), y64[which], lam[:, which], lipschitz[which].double(),
                             steps=steps, tol=tol, x0=c[:, which])
        c[:, which] = torch.where(loose[:, which], polished, c[:, which])
    return c.to(y.dtype)
