"""Priors that each break one rule of the contract, for `csbench check` to catch (tests/test_check.py)."""
import time

import torch

from csbench import Prior


class BackProjection(Prior):
    """x = clip(A^T y): passes every check; the others below break one rule each."""
    name = "back-projection"
    kind = "other"
    description = "A^T y, clipped to [0, 1]"

    def recover(self, problem):
        return problem.operator.adjoint(problem.y).reshape(problem.batch, *problem.shape).clamp(0, 1)


class Constant(BackProjection):
    name = "constant"
    description = "mid-grey whatever y says"

    def recover(self, problem):
        return 0 * super().recover(problem) + 0.5


class InPlace(BackProjection):
    name = "in-place"
    description = "scales problem.y in place"

    def recover(self, problem):
        problem.y /= problem.y.norm(dim=1, keepdim=True)
        return super().recover(problem)


class Hanging(BackProjection):
    name = "hanging"
    description = "never returns"

    def recover(self, problem):
        time.sleep(10 ** 6)


class NoMessage(BackProjection):
    name = "no-message"
    description = "raises an empty exception on bad input"

    def recover(self, problem):
        if problem.y.shape[1] != problem.operator.m:
            raise ValueError()
        return super().recover(problem)


# -- probes: each tries one route to the test split ----------------------------------------------
class ProbeSplit(BackProjection):
    name = "probe-split"
    description = "asks the sealed dataset for its test split"

    def recover(self, problem):
        return self.context.dataset.split("test", problem.batch)


class ProbeBehind(BackProjection):
    name = "probe-behind"
    description = "looks for a dataset behind the seal and reads its test split"

    def recover(self, problem):
        sealed = self.context.dataset
        for attr in ("_dataset", "dataset", "_read"):
            behind = getattr(sealed, attr, None)
            behind = getattr(behind, "__self__", behind)  # a bound method leads to its object
            if behind is not None and hasattr(behind, "split"):
                return behind.split("test", problem.batch)
        raise RuntimeError("no route to the test split")


class ProbeAttribute(BackProjection):
    name = "probe-attribute"
    description = "reads a dataset attribute outside the whitelist (random-net's test latents)"

    def recover(self, problem):
        self.context.dataset.latents("test", problem.batch)
        return super().recover(problem)


class ProbeInSetup(BackProjection):
    name = "probe-in-setup"
    description = "peeks at the test split in setup, hides the error, then recovers honestly"

    def setup(self, context):
        super().setup(context)
        try:
            getattr(context.dataset, "_read", context.dataset.split)("test", 1)
        except Exception:
            pass


class ProbeAround(BackProjection):
    name = "probe-around"
    description = "loads the dataset by name itself, around the seal"

    def recover(self, problem):
        from csbench.datasets import load_dataset

        return load_dataset(problem.dataset).split("test", problem.batch)


class ImageShaped(BackProjection):
    """The classic first mistake: images, not flattened signals, passed to the operator."""
    name = "image-shaped"
    description = "passes (B, C, H, W) to forward"

    def recover(self, problem):
        x = torch.zeros(problem.batch, *problem.shape)
        residual = problem.operator.forward(x) - problem.y
        return x + residual.mean()


class NeedsArgument(BackProjection):
    name = "needs-argument"
    description = "a constructor csbench cannot call"

    def __init__(self, path, **params):
        super().__init__(**params)
