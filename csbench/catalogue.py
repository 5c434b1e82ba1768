"""`csbench list`: every prior, dataset, measurement model and trained generator, with origin."""
from __future__ import annotations

from csbench.datasets import DATASETS
from csbench.measurements import MEASUREMENTS
from csbench.priors import registry


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(tuple("-" * w for w in widths)), *map(line, rows)])


def catalogue_text() -> str:
    from csbench.generative.zoo import catalogue as trained_models

    priors = [(cls.name, cls.kind, ",".join(cls.links), cls.origin or cls.__module__, cls.description)
              for cls in sorted(registry().values(), key=lambda c: (c.kind, c.name))]
    datasets = [(name, "x".join(map(str, getattr(cls, "shape", ()))) or "-", cls.description)
                for name, cls in sorted(DATASETS.items())]
    measurements = [(name, cls.link, cls.description) for name, cls in sorted(MEASUREMENTS.items())]
    models = [(m["model"], m["dataset"], m.get("latent_dim", ""), m.get("epochs", ""),
               f"{m['representation_error']:.4f}" if m.get("representation_error") is not None else "-")
              for m in trained_models()]
    return "\n\n".join([
        "PRIORS\n" + _table(("name", "kind", "links", "origin", "description"), priors),
        "DATASETS\n" + _table(("name", "shape", "description"), datasets),
        "MEASUREMENTS\n" + _table(("name", "link", "description"), measurements),
        "GENERATIVE MODELS (representation error = min_z ||G(z) - x||^2 / n on held-out images)\n"
        + _table(("model", "dataset", "latent k", "epochs", "repr. error"), models),
    ])
