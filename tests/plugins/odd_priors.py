"""Priors that misbehave on purpose, to test that csbench records, skips and checks them."""
import os

import torch

from csbench import Prior


class Crashing(Prior):
    name = "crashing"
    kind = "other"
    description = "raises on every task"

    def recover(self, problem):
        raise RuntimeError("solver diverged")


class Interrupting(Prior):
    """Acts like a user's Ctrl-C when m equals $CSBENCH_TEST_INTERRUPT_AT; otherwise returns A^T y."""
    name = "interrupting"
    kind = "other"
    description = "back-projection, interrupted at one m"

    def recover(self, problem):
        if str(problem.m) == os.environ.get("CSBENCH_TEST_INTERRUPT_AT"):
            raise KeyboardInterrupt
        return problem.operator.adjoint(problem.y).reshape(problem.batch, *problem.shape).clamp(0, 1)


class OnlyOneBit(Prior):
    name = "only-one-bit"
    kind = "other"
    description = "claims to support only the sign link"
    links = ("sign",)

    def recover(self, problem):
        return torch.zeros(problem.batch, *problem.shape)


class Peeking(Prior):
    """Cheats: reads the test images during recovery. The contract check must catch it."""
    name = "peeking"
    kind = "other"
    description = "returns the test images"

    def recover(self, problem):
        return self.context.dataset.split("test", problem.batch)


class Noisy(Prior):
    """Ignores the seed: nondeterministic and batch dependent. The contract check must catch it."""
    name = "noisy"
    kind = "other"
    description = "random output"

    def recover(self, problem):
        return torch.rand(problem.batch, *problem.shape)
