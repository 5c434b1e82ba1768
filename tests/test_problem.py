"""Problem.select: a sub-batch of instances is the same problem, instance by instance."""
import pytest
import torch

from csbench.datasets import load_dataset
from csbench.measurements import MEASUREMENTS
from csbench.runner import Task, make_problem


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_select_slices_y_and_the_operator_alike(name):
    x = load_dataset("mnist").split("validation", 4)
    problem = make_problem(x, Task("mnist", name, "any", 100, 0.1, 0), "validation", "cpu")
    part = problem.select([2, 0])
    assert part.batch == 2 and part.operator.batch == 2 and part.shape == problem.shape
    torch.testing.assert_close(part.y, problem.y[[2, 0]])
    flat = x.reshape(4, -1)
    torch.testing.assert_close(part.operator.forward(flat[[2, 0]]), problem.operator.forward(flat)[[2, 0]])
    r = torch.randn(4, problem.m)
    torch.testing.assert_close(part.operator.adjoint(r[[2, 0]]), problem.operator.adjoint(r)[[2, 0]])


def test_select_copies_the_generator_state():
    x = load_dataset("mnist").split("validation", 2)
    problem = make_problem(x, Task("mnist", "gaussian", "any", 50, 0.1, 0), "validation", "cpu")
    alone = problem.select(1)
    assert torch.equal(torch.randn(3, generator=alone.generator), torch.randn(3, generator=problem.generator))
