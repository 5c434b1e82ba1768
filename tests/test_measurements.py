"""Measurement models: adjoint tests, scaling, noise convention, snapping, links, determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.fft
import torch

from csbench.errors import CsbenchError
from csbench.measurements import MEASUREMENTS, DenseOperator, dottest, get_measurement
from csbench.measurements.dct import dct, dct2, idct, idct2
from csbench.measurements.subsampled_dct import SubsampledDCTOperator
from matrix_free import MatrixFree

SHAPE = (1, 28, 28)
N = 784
LINEAR = sorted(name for name, cls in MEASUREMENTS.items() if cls.link == "identity")


def build(name: str, m: int, shape=SHAPE, batch: int = 3, seed: int = 0):
    model = get_measurement(name)
    return model, model.operator(m, shape, batch, torch.Generator().manual_seed(seed))


def as_float64(operator):
    dense = operator.dense()
    return operator if dense is None else DenseOperator(dense.double())


def dense_equivalent(operator) -> torch.Tensor:
    """(B, m, n) matrices, by applying the operator to the identity."""
    eye = torch.eye(operator.n, dtype=torch.float64)
    columns = operator.forward(eye[:, None, :].expand(operator.n, operator.batch, operator.n))
    return columns.permute(1, 2, 0)


def test_registry_names_and_metadata():
    assert {"gaussian", "rademacher", "subsampled-dct", "inpaint", "inpaint-block", "superres",
            "one-bit", "phaseless"} <= set(MEASUREMENTS)
    for name, cls in MEASUREMENTS.items():
        assert cls.name == name and cls.description and cls.link in ("identity", "sign", "abs")
    assert MEASUREMENTS["one-bit"].link == "sign" and MEASUREMENTS["phaseless"].link == "abs"
    with pytest.raises(CsbenchError):
        get_measurement("nope")


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
@pytest.mark.parametrize("m", [1, 37, 200, 784])
def test_adjoint_dot_product(name, m):
    model, operator = build(name, m)
    operator = as_float64(operator)
    assert operator.m == model.effective_m(m, SHAPE) and operator.n == N and operator.batch == 3
    assert dottest(operator, generator=torch.Generator().manual_seed(1), rtol=1e-10) <= 1e-10


@pytest.mark.parametrize("name", LINEAR)
def test_adjoint_multichannel_and_leading_dims(name):
    shape = (3, 8, 12)
    n = 3 * 8 * 12
    _, operator = build(name, 60, shape=shape, batch=2)
    operator = as_float64(operator)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 2, n, generator=g, dtype=torch.float64)
    y = torch.randn(4, 2, operator.m, generator=g, dtype=torch.float64)
    dottest(operator, generator=g, rtol=1e-10)
    ax, aty = operator.forward(x), operator.adjoint(y)
    assert ax.shape == (4, 2, operator.m) and aty.shape == (4, 2, n)
    for r in range(4):  # restarts broadcast: the same as applying to each restart alone
        torch.testing.assert_close(ax[r], operator.forward(x[r]))
        torch.testing.assert_close(aty[r], operator.adjoint(y[r]))


class _WrongAdjoint(MatrixFree):
    """A^T replaced by 1.01 A^T: a 1% error the dot-product test must catch."""

    def adjoint(self, y):
        return 1.01 * super().adjoint(y)


def test_dottest_catches_a_wrong_adjoint_and_wrong_shapes():
    _, operator = build("subsampled-dct", 50)
    assert dottest(operator) < 1e-10
    with pytest.raises(AssertionError, match="dot-product test"):
        dottest(_WrongAdjoint(operator))
    broken = _WrongAdjoint(operator)
    broken.adjoint = lambda y: y  # (B, m) instead of (B, n)
    with pytest.raises(AssertionError, match="adjoint gave"):
        dottest(broken)


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_to_device_moves_the_operator(name):
    """`to` must move every tensor of the operator: on the `meta` device (shapes, no data) a
    forward/adjoint pass fails unless everything it touches moved along."""
    _, operator = build(name, 50)
    moved = operator.to("meta")
    assert moved.device.type == "meta" and operator.device.type == "cpu"
    y = moved.forward(torch.rand(3, N, device="meta"))
    assert y.device.type == "meta" and tuple(y.shape) == (3, operator.m)
    assert tuple(moved.adjoint(y).shape) == (3, N)


def test_dct_matches_scipy_and_inverts():
    g = torch.Generator().manual_seed(3)
    for size in (1, 2, 5, 8, 28):
        x = torch.randn(2, 3, size, generator=g, dtype=torch.float64)
        expected = scipy.fft.dct(x.numpy(), type=2, norm="ortho", axis=-1)
        np.testing.assert_allclose(dct(x).numpy(), expected, atol=1e-12)
        torch.testing.assert_close(idct(dct(x)), x)
    image = torch.randn(2, 3, 28, 20, generator=g, dtype=torch.float64)
    expected = scipy.fft.dctn(image.numpy(), axes=(-2, -1), norm="ortho")
    np.testing.assert_allclose(dct2(image).numpy(), expected, atol=1e-12)
    torch.testing.assert_close(idct2(dct2(image)), image)


def test_subsampled_dct_equals_its_dense_matrix():
    shape, n, m = (2, 6, 5), 60, 17
    _, operator = build("subsampled-dct", m, shape=shape, batch=3)
    assert operator.dense() is None
    dense = dense_equivalent(operator)
    # the same matrix written out: sqrt(n/m) * rows of (C x 2-D DCT) * diag(signs)
    basis = scipy.fft.dctn(np.eye(n).reshape(n, *shape), axes=(-2, -1), norm="ortho").reshape(n, n).T
    for b in range(3):
        expected = math.sqrt(n / m) * basis[operator.rows[b].numpy()] * operator.signs[b].numpy()
        np.testing.assert_allclose(dense[b].numpy(), expected, atol=1e-12)
        gram = dense[b] @ dense[b].T  # A A^T = (n/m) I: rows are distinct, orthogonal
        torch.testing.assert_close(gram, (n / m) * torch.eye(m, dtype=torch.float64))
    torch.testing.assert_close(operator.norm_squared(), torch.full((3,), n / m))
    g = torch.Generator().manual_seed(4)
    y = torch.randn(3, m, generator=g, dtype=torch.float64)
    torch.testing.assert_close(operator.adjoint(y), (dense.transpose(1, 2) @ y[..., None])[..., 0])


def test_subsampled_dct_in_float32_on_grids():
    """As the solvers call it: float32 vectors (G, B, .), against the float64 dense matrix."""
    shape, n, m = (3, 8, 8), 192, 50
    _, operator = build("subsampled-dct", m, shape=shape, batch=3)
    dense = dense_equivalent(operator)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 3, n, generator=g, dtype=torch.float64), torch.randn(2, 3, m, generator=g, dtype=torch.float64)
    forward, adjoint = operator.forward(x.float()), operator.adjoint(y.float())
    assert forward.dtype == adjoint.dtype == torch.float32
    torch.testing.assert_close(forward.double(), (dense @ x[..., None])[..., 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(adjoint.double(), (dense.transpose(1, 2) @ y[..., None])[..., 0], rtol=1e-5, atol=1e-5)


def test_subsampled_dct_has_linear_memory():
    shape = (3, 64, 64)
    n = 3 * 64 * 64
    _, operator = build("subsampled-dct", 1000, shape=shape, batch=2)
    assert isinstance(operator, SubsampledDCTOperator)
    tensors = [v for v in vars(operator).values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.numel() <= 2 * n for t in tensors)
    assert sum(t.numel() for t in tensors) < n * n / 1000
    rows = operator.rows
    assert all(len(set(r.tolist())) == 1000 for r in rows)  # without replacement
    assert set(operator.signs.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("name", ["gaussian", "rademacher", "subsampled-dct"])
def test_energy_is_preserved_in_expectation(name):
    """E||A x||^2 = ||x||^2: average over 400 independent operators (each instance its own draw)."""
    shape, n, m, batch = (1, 8, 8), 64, 16, 400
    _, operator = build(name, m, shape=shape, batch=batch)
    x = torch.rand(n, generator=torch.Generator().manual_seed(5)).expand(batch, n)
    ratio = operator.forward(x).pow(2).sum(-1) / x.pow(2).sum(-1)
    assert abs(ratio.mean().item() - 1.0) < 0.05
    assert ratio.std().item() > 0  # instances really differ


@pytest.mark.parametrize("name", sorted(n for n, c in MEASUREMENTS.items() if c.link != "sign"))
def test_noise_energy_is_sigma_squared(name):
    """With x = 0 the measurements are the noise: E||e||^2 = sigma^2 (e_i ~ N(0, sigma^2/m))."""
    model, operator = build(name, 100, batch=200)
    sigma = 0.3
    y = model.measure(torch.zeros(200, N), operator, sigma, torch.Generator().manual_seed(6))
    assert y.shape == (200, operator.m)
    assert abs(y.pow(2).sum(-1).mean().item() / sigma ** 2 - 1.0) < 0.05


def test_superres_snaps_to_block_factors():
    model = get_measurement("superres")
    assert model.factors(SHAPE) == [2, 4, 7, 14]
    snapped = {m: model.effective_m(m, SHAPE) for m in (1, 4, 9, 10, 30, 49, 100, 196, 784)}
    # nearest of {4, 16, 49, 196}; a tie (10: 4 or 16) takes the larger m
    assert snapped == {1: 4, 4: 4, 9: 4, 10: 16, 30: 16, 49: 49, 100: 49, 196: 196, 784: 196}
    assert model.effective_m(1000, (3, 64, 64)) == 3 * 16 * 16
    with pytest.raises(CsbenchError):
        model.effective_m(10, (1, 7, 7))


def test_superres_is_block_average_with_unit_norm():
    _, operator = build("superres", 49)  # factor 4: 7 x 7 output
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    means = torch.nn.functional.avg_pool2d(x, 4).flatten(1)
    torch.testing.assert_close(operator.forward(x.flatten(1)), 4 * means)  # y = f * block mean
    dense = dense_equivalent(operator)
    identity = torch.eye(49, dtype=torch.float64).expand(3, 49, 49)
    torch.testing.assert_close(dense @ dense.transpose(1, 2), identity)  # orthonormal rows
    torch.testing.assert_close(operator.norm_squared(), torch.ones(3))


def test_inpaint_random_masks():
    model, operator = build("inpaint", 300, batch=3)
    assert model.effective_m(300, SHAPE) == 300 and model.effective_m(10_000, SHAPE) == N
    assert model.effective_m(100, (3, 8, 8)) == 99  # whole pixels: all 3 channels of 33 pixels
    x = torch.arange(N, dtype=torch.float64).expand(3, N)
    y = operator.forward(x)
    kept = [set(row.long().tolist()) for row in y]
    assert all(len(k) == 300 for k in kept) and kept[0] != kept[1]  # a mask per instance
    _, color = build("inpaint", 99, shape=(3, 8, 8), batch=1)
    pixels = color.indices[0].reshape(3, 33)
    torch.testing.assert_close(pixels - pixels[0], torch.arange(3)[:, None].expand(3, 33) * 64)


def test_inpaint_block_removes_a_central_square():
    model = get_measurement("inpaint-block")
    assert model.effective_m(784 - 196, SHAPE) == 588  # a 14 x 14 block
    assert model.effective_m(600, SHAPE) == 784 - 196  # nearest: s = 14 (588) beats s = 13 (615)
    assert model.effective_m(784, SHAPE) == 784
    operator = model.operator(588, SHAPE, 2, torch.Generator().manual_seed(0))
    mask = operator.adjoint(torch.ones(2, 588)).reshape(2, 28, 28)
    expected = torch.ones(28, 28)
    expected[7:21, 7:21] = 0
    torch.testing.assert_close(mask, expected.expand(2, 28, 28))


def test_one_bit_outputs_signs():
    model, operator = build("one-bit", 100, batch=3)
    x = torch.rand(3, N)
    for sigma in (0.0, 0.1):
        y = model.measure(x, operator, sigma, torch.Generator().manual_seed(8))
        assert set(y.unique().tolist()) == {-1.0, 1.0}
    y = model.measure(torch.zeros(3, N), operator, 0.0, torch.Generator().manual_seed(8))
    assert (y == 1).all()  # sign(0) := +1


def test_phaseless_is_modulus_plus_noise():
    model, operator = build("phaseless", 100, batch=3)
    x = torch.rand(3, N)
    y = model.measure(x, operator, 0.0, torch.Generator().manual_seed(9))
    assert (y >= 0).all()
    torch.testing.assert_close(y, operator.forward(x).abs())
    torch.testing.assert_close(model.measure(-x, operator, 0.0, torch.Generator()), y)
    g = torch.Generator().manual_seed(9)
    e = torch.randn(3, 100, generator=torch.Generator().manual_seed(9)) * (0.5 / 10)
    torch.testing.assert_close(model.measure(x, operator, 0.5, g), operator.forward(x).abs() + e)


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_same_seed_same_operator(name):
    x = torch.rand(3, N, generator=torch.Generator().manual_seed(10))
    first = build(name, 100, seed=11)[1].forward(x)
    torch.testing.assert_close(build(name, 100, seed=11)[1].forward(x), first)
    if name not in ("superres", "inpaint-block"):  # deterministic models
        assert not torch.allclose(build(name, 100, seed=12)[1].forward(x), first)


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_bad_m_is_a_clean_error(name):
    """Every model rejects m < 1 with a one-line error."""
    model = get_measurement(name)
    with pytest.raises(CsbenchError):
        model.operator(0, SHAPE, 1, torch.Generator())


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_lipschitz_bound_is_exact_where_known_and_an_upper_bound_everywhere(name):
    """The one norm path: every solver's step comes from `lipschitz_bound`."""
    _, operator = build(name, 50)
    dense = torch.stack([operator.forward(torch.eye(N).expand(operator.batch, N, N).transpose(0, 1)[i])
                         for i in range(N)], dim=-1)                                  # (B, m, n)
    exact = torch.linalg.matrix_norm(dense.double(), ord=2) ** 2
    bound = operator.lipschitz_bound().double()
    assert torch.all(bound >= exact * (1 - 1e-5)) and torch.all(bound <= 1.06 * exact)
    if operator.exact_norm:
        torch.testing.assert_close(bound, exact, rtol=1e-5, atol=1e-6)


def test_the_power_iteration_gives_the_same_norms_chunk_by_chunk(monkeypatch):
    """Dense operators estimate ||A_b||^2 in cache-sized chunks of instances: the same values as
    one batch, and close to the exact spectral norms, from below."""
    from csbench.measurements import base

    matrices = torch.randn(6, 30, 50, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    monkeypatch.setattr(base, "CACHE_BYTES", 1)                # one instance per chunk
    assert len(base.cache_chunks(6, 30 * 50 * 8)) == 6
    chunked = DenseOperator(matrices).norm_squared()
    monkeypatch.setattr(base, "CACHE_BYTES", 2 ** 40)          # one chunk
    whole = DenseOperator(matrices).norm_squared()
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=0)
    exact = torch.linalg.matrix_norm(matrices, ord=2) ** 2
    assert bool((whole <= exact * (1 + 1e-12)).all()) and bool((whole >= 0.99 * exact).all())  # from below
