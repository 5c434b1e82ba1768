"""Every registered prior passes the same contract that `csbench check` runs on plug-ins.

Iterative priors run with fewer steps here: the contract (shapes, finite output, determinism,
batch independence, no test-split access, errors on bad input) does not depend on the count.
"""
import pytest
import torch

from csbench.check import contract
from csbench.datasets import load_dataset
from csbench.measurements import MEASUREMENTS, get_measurement
from csbench.priors import PriorContext, make_prior, registry
from csbench.runner import Task, make_problem, recover

FEWER_STEPS = {
    "vae": "vae[steps=60,restarts=3]",
    "dcgan": "dcgan[steps=60,restarts=2]",
    "random-net": "random-net[steps=60,restarts=2]",
    "hv": "hv[steps=60,restarts=2]",
    "pgd-gan": "pgd-gan[outer=3,inner=20,restarts=2]",
    "sparsegen": "sparsegen[steps=60,restarts=2]",
    "deep-decoder": "deep-decoder[steps=100]",
    "score": "score[samples=1,levels=12,steps=1]",
}
DATASET = {"random-net": "random-net"}
BUILT_IN = sorted(name for name, cls in registry().items() if cls.origin == "csbench")


def test_every_required_prior_is_registered():
    assert {"lasso-pixel", "lasso-dct", "lasso-wavelet", "vae", "dcgan", "random-net", "hv", "pgd-gan",
            "sparsegen", "deep-decoder", "tv", "omp", "iht"} <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_builtin_prior_passes_the_contract(name):
    outcomes = contract(make_prior(FEWER_STEPS.get(name, name)), DATASET.get(name, "mnist"))
    assert [o for o in outcomes if o.status != "ok"] == [] and len(outcomes) == 9


def _claimed_pairs():
    for name in BUILT_IN:
        for measurement, model in sorted(MEASUREMENTS.items()):
            if model.link in registry()[name].links:
                yield name, measurement


@pytest.mark.parametrize("name, measurement", list(_claimed_pairs()))
def test_every_prior_runs_with_every_measurement_it_claims(name, measurement):
    dataset = DATASET.get(name, "mnist")
    data = load_dataset(dataset)
    prior = make_prior(FEWER_STEPS.get(name, name))
    assert prior.supports(get_measurement(measurement), data) is None
    prior.setup(PriorContext(dataset=data, shape=tuple(data.shape)))
    x = data.split("validation", 2)
    problem = make_problem(x, Task(dataset, measurement, name, 196, 0.05, 0), "validation", "cpu")
    x_hat = recover(prior, problem)
    assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
