"""Generator checkpoints: `NAME.pt` (torch.save of the state dict) + `NAME.json` sidecar.

The sidecar holds what rebuilds and describes the model: `architecture`, `config` (its
hyperparameters), the training metadata (dataset, split, n_train, seed, epochs, losses,
seconds, representation_error, ...), `torch_version` and the `sha256` of the .pt file.
Loading verifies the hash and the state-dict keys and shapes; any problem is a one-line
CsbenchError naming the file.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from csbench.errors import CsbenchError
from csbench.generative.models import build_model


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(module: nn.Module, path: Path, metadata: dict[str, Any]) -> Path:
    """Write `path` (.pt) and its JSON sidecar; returns `path`.

    `module` must carry `architecture` and `config` (see models.py); `metadata` is merged into
    the sidecar as is (JSON-serialisable values only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(module.state_dict(), path)
    sidecar = {"architecture": module.architecture, "config": module.config, **metadata,
               "torch_version": torch.__version__, "sha256": sha256_of(path)}
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def read_sidecar(path: Path) -> dict[str, Any]:
    """The sidecar of checkpoint `path` as a dict."""
    side = sidecar_path(path)
    try:
        meta = json.loads(side.read_text())
    except FileNotFoundError:
        raise CsbenchError(f"checkpoint sidecar {side} is missing") from None
    except (OSError, ValueError) as exc:
        raise CsbenchError(f"checkpoint sidecar {side} is unreadable: {exc}") from None
    if not isinstance(meta, dict) or not {"architecture", "config", "sha256"} <= set(meta):
        raise CsbenchError(f"checkpoint sidecar {side} lacks architecture/config/sha256")
    return meta


def verified_state(path: Path, meta: dict[str, Any]) -> Any:
    """The state dict of checkpoint `path` (torch.load with weights_only=True, on the CPU) once its
    file hashes to the sidecar's sha256; a CsbenchError naming the file if it is missing, replaced
    or unreadable."""
    if not path.is_file():
        raise CsbenchError(f"checkpoint {path} is missing")
    if sha256_of(path) != meta["sha256"]:
        raise CsbenchError(f"checkpoint {path} does not match the sha256 in its sidecar (corrupt or replaced)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged zip / pickle
        raise CsbenchError(f"checkpoint {path} cannot be read: {type(exc).__name__}") from None


def update_sidecar(path: Path, **entries: Any) -> None:
    """Add or replace sidecar entries (e.g. representation_error, measured after training)."""
    meta = read_sidecar(path)
    meta.update(entries)
    sidecar_path(path).write_text(json.dumps(meta, indent=2) + "\n")


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """(module in eval mode on `device`, sidecar metadata). Raises CsbenchError naming the file if
    the .pt is missing, corrupt, truncated, has the wrong hash or does not match the architecture."""
    path = Path(path)
    meta = read_sidecar(path)
    state = verified_state(path, meta)
    module = build_model(meta["architecture"], meta["config"])
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()} if isinstance(state, dict) else {}
    if found != expected:
        differing = sorted(set(expected) ^ set(found)) or sorted(k for k in expected if expected[k] != found[k])
        raise CsbenchError(f"checkpoint {path} does not match architecture {meta['architecture']!r} "
                           f"(keys/shapes differ: {', '.join(differing[:3])})")
    module.load_state_dict(state)
    return module.to(device).eval(), meta
