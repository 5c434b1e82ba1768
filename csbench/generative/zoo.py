"""The generator zoo: committed checkpoints `csbench/checkpoints/{model}-{dataset}.pt` and the
random ReLU networks of the `random-net` dataset, all behind one interface
(`decode(z)`, `latent_dim`, `shape`; see models.py).

Checkpoints are looked up in `$CSBENCH_CHECKPOINTS` (when set) and then in the installed
package's `checkpoints/` folder (resolved from the package path, so non-editable installs work).
"""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from csbench.errors import CsbenchError
from csbench.generative.checkpoints import load_checkpoint
from csbench.generative.models import freeze

MODELS = ("vae", "dcgan", "random-net")
PACKAGE_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


def checkpoint_dirs() -> list[Path]:
    """Folders searched for checkpoints, first match wins."""
    user = os.environ.get("CSBENCH_CHECKPOINTS")
    return ([Path(user)] if user else []) + [PACKAGE_CHECKPOINTS]


def find_checkpoint(model: str, dataset_name: str) -> Path | None:
    for folder in checkpoint_dirs():
        path = folder / f"{model}-{dataset_name}.pt"
        if path.is_file():
            return path
    return None


class RandomNetGenerator(nn.Module):
    """Adapts a dataset's random ReLU network ((B, k) -> (B, n)) to decode: (..., k) -> (..., C, H, W)."""

    def __init__(self, network: nn.Module, shape: tuple[int, int, int]):
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.latent_dim = int(network.latent_dim)
        self.shape = tuple(shape)

    def decode(self, z: Tensor) -> Tensor:
        flat = self.network(z.reshape(-1, self.latent_dim))
        return flat.reshape(*z.shape[:-1], *self.shape)


def load_generator(model: str, dataset: Any, device: str | torch.device = "cpu") -> nn.Module:
    """The frozen generator (eval mode, no parameter gradients, see `models.freeze`) of `model`
    for Dataset `dataset`."""
    if model not in MODELS:
        raise CsbenchError(f"unknown generator {model!r}; known: {', '.join(MODELS)}")
    if model == "random-net":
        network = getattr(dataset, "generator", None)
        if network is None:
            raise CsbenchError(f"the random-net prior only works on the random-net dataset, not {dataset.name!r}")
        shape = tuple(getattr(dataset, "shape", (1, 28, 28)))
        return RandomNetGenerator(copy.deepcopy(network), shape).to(device)  # the dataset's own stays put
    path = find_checkpoint(model, dataset.name)
    if path is None:
        raise CsbenchError(f"no {model} checkpoint for dataset {dataset.name}; "
                           f"train one with `csbench train {model} --dataset {dataset.name}`")
    generator, _ = load_checkpoint(path, device)
    if math.prod(generator.shape) != math.prod(tuple(dataset.shape)):
        raise CsbenchError(f"checkpoint {path} makes {generator.shape} images, dataset {dataset.name} has {dataset.shape}")
    return freeze(generator)


def catalogue() -> list[dict[str, Any]]:
    """One entry per checkpoint found: model, dataset, latent_dim, epochs, representation_error, path."""
    entries, seen = [], set()
    for folder in checkpoint_dirs():
        for sidecar in sorted(folder.glob("*.json")):
            try:
                meta = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            key = (meta.get("model"), meta.get("dataset"))
            if None in key or key in seen or not sidecar.with_suffix(".pt").is_file():
                continue
            seen.add(key)
            entries.append({"model": key[0], "dataset": key[1], "latent_dim": meta.get("latent_dim"),
                            "epochs": meta.get("epochs"), "n_train": meta.get("n_train"),
                            "representation_error": meta.get("representation_error"),
                            "path": str(sidecar.with_suffix(".pt"))})
    return entries
