"""The theory experiments by name (`EXPERIMENTS`), each returning a tidy table; the task runner
calls them beside the tasks, and an experiment's stored table is keyed by this module's code
closure (runner.experiment_fingerprint).
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

from csbench.experiments.landscape import landscape
from csbench.experiments.phase import l1_phase, random_net_phase


def run_phase(scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """Both phase-transition studies in one tidy table, told apart by `study`."""
    with _one_thread():
        nets = random_net_phase(scale=scale, seed=seed).assign(study="random-net")
        l1 = l1_phase(scale=scale, seed=seed).assign(study="l1")
    return pd.concat([nets, l1], ignore_index=True)


def run_landscape(scale: float = 1.0, seed: int = 0) -> pd.DataFrame:
    with _one_thread():
        return landscape(scale=scale, seed=seed)


EXPERIMENTS: dict[str, Callable[..., pd.DataFrame]] = {"phase": run_phase, "landscape": run_landscape}


class _one_thread:
    """Small batched problems run fastest on one thread (no intra-op synchronisation)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)
