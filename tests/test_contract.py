"""Every registered prior passes the same contract that `csbench check` runs on plug-ins.

Iterative priors run with fewer steps here: the contract (shapes, finite output, determinism,
batch independence, no test-split access, errors on bad input) does not depend on the count.
"""
import pytest

from csbench.check import contract
from csbench.priors import make_prior, registry

FEWER_STEPS = {
    "vae": "vae[steps=60,restarts=3]",
    "dcgan": "dcgan[steps=60,restarts=2]",
    "random-net": "random-net[steps=60,restarts=2]",
    "hv": "hv[steps=60,restarts=2]",
    "pgd-gan": "pgd-gan[outer=3,inner=20,restarts=2]",
    "sparsegen": "sparsegen[steps=60,restarts=2]",
    "deep-decoder": "deep-decoder[steps=100]",
}
DATASET = {"random-net": "random-net"}
BUILT_IN = sorted(name for name, cls in registry().items() if cls.origin == "csbench")


def test_every_required_prior_is_registered():
    assert {"lasso-pixel", "lasso-dct", "lasso-wavelet", "vae", "dcgan", "random-net", "hv", "pgd-gan",
            "sparsegen", "deep-decoder", "tv", "omp", "iht"} <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_builtin_prior_passes_the_contract(name):
    failures = [(check, reason) for check, reason in contract(make_prior(FEWER_STEPS.get(name, name)),
                                                               DATASET.get(name, "mnist")) if reason]
    assert failures == []
