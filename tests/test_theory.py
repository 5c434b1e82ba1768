"""Theory numbers (rho_d, the l1 statistical dimension) and tiny phase-transition / landscape runs."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from csbench.errors import CsbenchError
from csbench.experiments.figures import landscape_figure, landscape_summary, m_at_half, phase_figure
from csbench.experiments.landscape import landscape
from csbench.experiments.phase import l1_phase, matrix_vector_maps, random_net_phase
from csbench.measurements.base import DenseOperator
from csbench.theory import l1_rule_of_thumb, relu_angle_map, rho, statistical_dimension_l1


@pytest.mark.parametrize("depth, expected", [(2, 0.318), (3, 0.494), (4, 0.605), (5, 0.681)])
def test_rho_matches_hand_voroninski(depth, expected):
    assert rho(depth) == pytest.approx(expected, abs=1e-3)


def test_rho_closed_forms_and_growth():
    assert rho(1) == pytest.approx(0.0, abs=1e-12)           # sin(pi) / pi
    assert rho(2) == pytest.approx(1 / math.pi, rel=1e-12)    # th_1 = g(pi) = pi / 2
    assert relu_angle_map(math.pi) == pytest.approx(math.pi / 2)
    values = [rho(d) for d in range(2, 30)]
    assert all(a < b < 1 for a, b in zip(values, values[1:]))
    with pytest.raises(CsbenchError):
        rho(0)


@pytest.mark.parametrize("s, expected", [(100, 302), (150, 390)])
def test_statistical_dimension_reference_numbers(s, expected):
    assert statistical_dimension_l1(s, 784) == pytest.approx(expected, abs=1.0)


def test_statistical_dimension_edges_and_rule_of_thumb():
    assert statistical_dimension_l1(0, 50) == 0.0
    assert statistical_dimension_l1(50, 50) == 50.0
    values = [statistical_dimension_l1(s, 200) for s in (1, 5, 20, 80, 160)]
    assert all(a < b < 200 for a, b in zip(values, values[1:]))
    assert l1_rule_of_thumb(100, 784) == pytest.approx(200 * math.log(7.84), rel=1e-12)
    # REFERENCE: the rule of thumb 2 s log(n / s) overestimates by 30-45% at n = 784, s = 100
    assert 1.30 < l1_rule_of_thumb(100, 784) / statistical_dimension_l1(100, 784) < 1.45
    with pytest.raises(CsbenchError):
        statistical_dimension_l1(10, 5)


def test_m_at_half_interpolates_and_reports_nan():
    frame = pd.DataFrame({"k": [1] * 4 + [2] * 2, "m": [10, 10, 20, 20, 10, 20],
                          "success": [False, False, True, True, False, False]})
    half = m_at_half(frame, "k").set_index("k")["m50"]
    assert half[1] == pytest.approx(15.0)
    assert math.isnan(half[2])


def test_l1_phase_success_rises_with_m_near_the_statistical_dimension():
    frame = l1_phase(ss=(4,), ms=(6, 20, 40), n=48, trials=4, steps=1500)
    rate = frame.groupby("m")["success"].mean()
    threshold = statistical_dimension_l1(4, 48)               # about 17.5
    assert 6 < threshold < 40
    assert rate[6] == 0.0 and rate[40] == 1.0
    assert rate[6] <= rate[20] <= rate[40]


def test_l1_matrix_vector_maps_are_the_dense_operators_products():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 20, 32, generator=g)
    x, r = torch.randn(5, 32, generator=g), torch.randn(5, 20, generator=g)
    forward, adjoint = matrix_vector_maps(a)
    operator = DenseOperator(a)
    assert torch.allclose(forward(x), operator.forward(x), atol=1e-5)
    assert torch.allclose(adjoint(r), operator.adjoint(r), atol=1e-5)


def test_random_net_phase_needs_m_at_least_k():
    frame = random_net_phase(ks=(3,), ms=(2, 15), trials=4, restarts=2, steps=150)
    rate = frame.groupby("m")["success"].mean()
    assert rate[2] == 0.0                                     # m < k: a (k - m)-dim solution set
    assert rate[15] >= 0.75
    figure = phase_figure(frame, l1_phase(ss=(2,), ms=(4, 16), n=16, trials=2, steps=300))
    assert len(figure.axes) == 3                              # two heatmaps and the colour bar


def test_landscape_tiny_run_has_tidy_rows_and_the_check_succeeds():
    frame = landscape(depths=(3,), k=5, m=60, width=100, instances=2, starts=4, steps=150)
    assert len(frame) == 2 * 2 * 2 * 4                        # inits x methods x instances x starts
    assert set(frame["method"]) == {"plain", "negation check"}
    summary = landscape_summary(frame).set_index("init")
    assert set(summary.index) == {"random", "near -rho z*"}
    assert summary["rho"].tolist() == pytest.approx([rho(3)] * 2)
    assert (summary["check_success"] >= 0.75).all()
    assert len(landscape_figure(frame).axes) == 2
