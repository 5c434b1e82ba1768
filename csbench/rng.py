"""Explicit, derived random number generators: same parts, same numbers; no global RNG state."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts, e.g. (seed, dataset, measurement, m, noise)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def torch_generator(*parts: object) -> torch.Generator:
    """A CPU generator (draws are moved to the device, so numbers do not depend on it)."""
    import torch  # here, so that numpy-only users (the analysis, the report) do not import it

    g = torch.Generator()
    g.manual_seed(derive_seed(*parts))
    return g


def numpy_generator(*parts: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(*parts))
