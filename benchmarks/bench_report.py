"""Seconds to render a stored run (what `csbench report DIR` does after loading: summary, claim,
figures, report.md and report.html) with the current renderer and with the one before it,
measured in the same run.

    python benchmarks/bench_report.py [RUN_DIR] [--repeats 3]

RUN_DIR (default reports/reference/mnist-default-cpu) is copied into a temporary directory; the
run itself is never written. The named reference is the earlier renderer, kept here: every
figure saved with savefig(bbox_inches="tight") after its constrained layout (a layout pass, a
draw for the tight box, the final draw) and the reconstruction grid drawn as one axes per image.
After one warm-up render each, the two alternate `--repeats` times; the script prints the median
seconds of each, for the whole render and for its figures (grid building and PNG encoding), as
CPU seconds of this process (other processes sharing the cores barely move them) and wall-clock
seconds, and ends with `ratio: X` (reference / current CPU seconds of the whole render).
"""
from __future__ import annotations

import argparse
import io
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import numpy as np
from matplotlib.figure import Figure

from csbench import report
from csbench.analysis import figures

DEFAULT_RUN = Path(__file__).resolve().parents[1] / "reports" / "reference" / "mnist-default-cpu"


def reference_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata=report.FIGURE_MARK)
    return buffer.getvalue()


def reference_grid(truth: np.ndarray, recons: dict, *, max_images: int = 8, title: str | None = None) -> Figure:
    """The reconstruction grid as it was: one axes per image, constrained layout."""
    rows = [("truth", np.asarray(truth))] + [(label, np.asarray(x)) for label, x in recons.items()]
    n = min(max_images, rows[0][1].shape[0])
    fig = Figure(figsize=(1.1 * n + 1.2, 1.1 * len(rows) + (0.4 if title else 0)), layout="constrained")
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            image = np.clip(images[c], 0.0, 1.0)
            if image.shape[0] == 1:
                axes[r, c].imshow(image[0], cmap="gray", vmin=0.0, vmax=1.0)
            else:
                axes[r, c].imshow(np.moveaxis(image, 0, -1))
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def timed(function, spent: list[float]):
    """`function`, adding the CPU seconds of each call to spent[0]."""
    def call(*args, **kwargs):
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - start
    return call


def render(out: Path, reference: bool) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, CPU seconds in figures) of one render of `out`."""
    spent = [0.0]
    png, grid = (reference_png, reference_grid) if reference else (report._png, figures.reconstruction_grid)
    with ExitStack() as patches:
        patches.enter_context(mock.patch.object(report, "_png", timed(png, spent)))
        patches.enter_context(mock.patch.object(figures, "reconstruction_grid", timed(grid, spent)))
        cpu, wall = time.process_time(), time.perf_counter()
        report.write_outputs(out)
        return time.process_time() - cpu, time.perf_counter() - wall, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path, default=DEFAULT_RUN, help="a run directory (results.sqlite)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = {True: "reference (tight bbox, axes per image)", False: "current"}
    with tempfile.TemporaryDirectory() as scratch:
        outs = {}
        for reference in names:
            outs[reference] = Path(scratch) / ("reference" if reference else "current")
            shutil.copytree(args.run, outs[reference])
            render(outs[reference], reference)  # warm-up: imports, font caches
        times = {reference: [] for reference in names}
        for _ in range(args.repeats):
            for reference in names:
                times[reference].append(render(outs[reference], reference))
    print(f"run: {args.run}; median of {args.repeats} renders after a warm-up")
    medians = {reference: [statistics.median(column) for column in zip(*rows)] for reference, rows in times.items()}
    for reference, (cpu, wall, figure_cpu) in medians.items():
        print(f"{names[reference]:>40}: render {cpu:6.2f} s CPU ({wall:6.2f} s wall), figures {figure_cpu:6.2f} s CPU")
    print(f"figures ratio: {medians[True][2] / medians[False][2]:.2f}")
    print(f"ratio: {medians[True][0] / medians[False][0]:.2f}")


if __name__ == "__main__":
    main()
