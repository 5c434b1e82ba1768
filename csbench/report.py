"""Outputs of a run, rebuilt from its store: results.csv, summary.csv, claim.json, figures, report.

The report is a list of blocks (headings, text, tables, figures) rendered twice: Markdown with
figure links, and self-contained HTML with the figures embedded as base64 PNG.
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from csbench.analysis import figures  # noqa: E402
from csbench.analysis.claim import claim, error_floors  # noqa: E402
from csbench.analysis.compare_runs import compare_summaries, comparison_markdown  # noqa: E402
from csbench.analysis.stats import summarize  # noqa: E402
from csbench.analysis.targets import savings_curve  # noqa: E402
from csbench.metrics import CONVENTIONS  # noqa: E402
from csbench.store import ResultStore  # noqa: E402

@dataclass
class Block:
    kind: str  # "h1" | "h2" | "p" | "table" | "figure" | "pre"
    content: object
    caption: str = ""


def claim_line(out: Path) -> str:
    data = json.loads((Path(out) / "claim.json").read_text())
    return f"claim: {data.get('verdict') or json.dumps(data)}"


def write_outputs(out: Path, against: Path | None = None) -> None:
    """Everything of the output contract, from `out/results.sqlite`."""
    out = Path(out)
    store = ResultStore(out / "results.sqlite")
    results, meta = store.results(), {**store.meta(), "sessions": store.sessions()}
    recons, experiments = store.reconstructions(), store.experiments()
    store.close()
    results.to_csv(out / "results.csv", index=False)  # columns as the store gives them
    summary = summarize(results)
    summary.to_csv(out / "summary.csv", index=False)
    savings = savings_curve(results) if _has_both_kinds(results) else pd.DataFrame()
    verdict = claim(results, **_headline_group(results, meta.get("config", {})))
    (out / "claim.json").write_text(json.dumps(verdict, indent=2) + "\n")
    comparison = None
    if against is not None:
        comparison = compare_summaries(summary, pd.read_csv(Path(against) / "summary.csv"))
        comparison.to_csv(out / "comparison.csv", index=False)
    blocks = _blocks(results, summary, savings, verdict, meta, recons, experiments, comparison, against)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    for stale in figure_dir.glob("*.png"):
        stale.unlink()
    for block in blocks:
        if block.kind == "figure":
            name, fig = block.content
            fig.savefig(figure_dir / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close(fig)
    (out / "report.md").write_text(_markdown(blocks))
    (out / "report.html").write_text(_html(blocks, figure_dir))


def _headline_group(results: pd.DataFrame, config: dict) -> dict:
    """The claim is stated for the run's dataset and measurement at the paper's sigma = 0.1 when
    it was run, else at the first noise level of the configuration."""
    noises = sorted(results.noise.unique())
    wanted = config.get("noise") or noises
    noise = 0.1 if 0.1 in noises else (wanted[0] if wanted[0] in noises else noises[0])
    return dict(dataset=results.dataset.iloc[0], measurement=results.measurement.iloc[0], noise=noise)


def _has_both_kinds(results: pd.DataFrame) -> bool:
    ok = results[results.status == "ok"]
    return {"generative", "sparsity"} <= set(ok["kind"])


def _blocks(results, summary, savings, verdict, meta, recons, experiments, comparison, against) -> list[Block]:
    config = meta.get("config", {})
    blocks = [Block("h1", "csbench comparison report"),
              Block("p", f"**Verdict.** {verdict.get('verdict', '')}")]
    if verdict.get("target_rule"):
        blocks.append(Block("p", f"Headline target: {verdict['target_rule']}"))
    blocks += [Block("h2", "What was run"), Block("table", _run_table(results, config, meta["sessions"]))]

    blocks.append(Block("h2", "Error against number of measurements"))
    blocks.append(Block("figure", ("error_vs_m", figures.error_vs_m(summary)),
                        "Mean per-pixel MSE with bootstrap 95% CI bands, one line per prior."))
    blocks.append(Block("table", _mse_table(summary)))
    if not savings.empty:
        blocks.append(Block("h2", "Measurement savings of the generative prior"))
        blocks.append(Block("figure", ("savings", figures.savings_figure(savings, headline=verdict)),
                            "m_sparsity / m_generative for the best prior of each kind against the "
                            "target MSE, with paired-bootstrap 95% CI; the paper's 5-10x band is shaded."))
        if verdict.get("target_mse") is not None:
            blocks.append(Block("p", "Every (generative, sparsity) pair at the headline target and at twice "
                                "each generative prior's own error floor (the paper's comparison point): "
                                "m needed, ratio with paired-bootstrap 95% CI; NaN = not reached on the grid."))
            blocks.append(Block("table", _pair_table(results, verdict)))
        if verdict.get("crossover_mse") is not None:
            blocks.append(Block("p", f"Below MSE {verdict['crossover_mse']:.4g} the sparsity prior needs "
                                "fewer measurements: the generative prior's error floor "
                                "(its representation error) makes Lasso win at large m."))
    noise_fig = figures.noise_sweep(summary, None)
    if noise_fig is not None:
        blocks.append(Block("h2", "Noise sweep"))
        blocks.append(Block("figure", ("noise_sweep", noise_fig), "MSE against noise level sigma."))
    grid = _reconstructions(recons, summary)
    if grid is not None:
        blocks.append(Block("h2", "Reconstructions"))
        blocks.append(Block("figure", ("reconstructions", grid), "Top row: test images; then each prior at a few m."))
    blocks.append(Block("h2", "Speed"))
    blocks.append(Block("figure", ("seconds_vs_error", figures.seconds_vs_error(summary)),
                        "Seconds per image (batched recovery, this machine) against MSE."))
    blocks += _experiment_blocks(experiments)
    blocks += _detail_blocks(results)
    if comparison is not None:
        blocks.append(Block("h2", f"Changes against {against}"))
        blocks.append(Block("pre", comparison_markdown(comparison)))
    return blocks


def _run_table(results: pd.DataFrame, config: dict, sessions: list[dict]) -> pd.DataFrame:
    rows = [("preset", config.get("preset")), ("dataset", ", ".join(results.dataset.unique())),
            ("measurement", ", ".join(results.measurement.unique())),
            ("priors", ", ".join(results.prior.unique())),
            ("m grid", ", ".join(str(m) for m in sorted(results.m.unique()))),
            ("noise sigma", ", ".join(str(s) for s in sorted(results.noise.unique()))),
            ("test images per task", config.get("n_images")),
            ("validation images for tuning", config.get("n_validation")),
            ("seeds", config.get("seeds"))]
    rows += [(f"ran on ({i})" if len(sessions) > 1 else "ran on", _session_text(session))
             for i, session in enumerate(sessions, 1)]
    return pd.DataFrame(rows, columns=["setting", "value"])


def _session_text(session: dict) -> str:
    """One machine's share of a run: device, platform, versions, and the work it completed."""
    device = session.get("device", "cpu") + (f" ({session['accelerator']})" if session.get("accelerator") else "")
    work = ("interrupted" if "tasks" not in session else
            f"{session['tasks']} tasks" + (f", experiments {', '.join(session['experiments'])}"
                                          if session.get("experiments") else ""))
    pool = f", {session['executor']} executor, {session['workers']} workers" if "executor" in session else ""
    return (f"{device}; {session.get('platform')}, {session.get('threads')} threads{pool}; "
            f"csbench {session.get('csbench')}, torch {session.get('torch')}, python {session.get('python')}: {work}")


def _mse_table(summary: pd.DataFrame) -> pd.DataFrame:
    cell = summary.assign(cell=[f"{m:.4f} [{lo:.4f}, {hi:.4f}]" for m, lo, hi in
                                zip(summary.mse_mean, summary.mse_ci_low, summary.mse_ci_high)])
    table = cell.pivot_table(index="prior", columns="m", values="cell", aggfunc="first")
    table.columns = [f"m={m}" for m in table.columns]
    return table.reset_index()


def _pair_table(results: pd.DataFrame, verdict: dict) -> pd.DataFrame:
    group = results[(results.dataset == verdict["dataset"]) & (results.measurement == verdict["measurement"])
                    & (results.noise == verdict["noise"])]
    floors = error_floors(group, "generative")
    targets = sorted({verdict["target_mse"], *(2 * floors.to_numpy())})
    pairs = savings_curve(group, targets).sort_values(["target", "generative_prior", "sparsity_prior"])
    reached = pairs.generative_reached & pairs.sparsity_reached
    return pd.DataFrame({
        "target MSE": pairs.target.map(lambda t: f"{t:.4g}"), "generative": pairs.generative_prior,
        "sparsity": pairs.sparsity_prior, "m generative": pairs.m_generative.round(1),
        "m sparsity": pairs.m_sparsity.round(1),
        "ratio": [f"{r:.2f}" if ok else "not reached" for r, ok in zip(pairs.ratio, reached)],
        "95% CI": [f"[{lo:.2f}, {hi:.2f}]" if ok else "" for lo, hi, ok in
                   zip(pairs.ratio_ci_low, pairs.ratio_ci_high, reached)]})


def _reconstructions(recons: pd.DataFrame, summary: pd.DataFrame):
    truth = recons[recons.prior == "truth"].sort_values("instance")
    rest = recons[recons.prior != "truth"]
    if truth.empty or rest.empty:
        return None
    grid = sorted(rest.m.unique())  # quartiles of the grid: its ends show all-fail / all-exact rows
    shown_m = sorted({grid[len(grid) // 4], grid[len(grid) // 2], grid[3 * len(grid) // 4]})
    rows = {f"{prior} m={m}": np.stack(group.sort_values("instance").image.to_list())
            for (prior, m), group in rest[rest.m.isin(shown_m)].groupby(["prior", "m"], sort=True)}
    shown = min(len(truth), *(len(images) for images in rows.values()))
    return figures.reconstruction_grid(np.stack(truth.image.to_list())[:shown],
                                       {label: images[:shown] for label, images in rows.items()})


def _experiment_blocks(experiments: dict[str, pd.DataFrame]) -> list[Block]:
    if not experiments:
        return []
    from csbench.experiments import experiment_report

    blocks = [Block("h2", "Theory experiments")]
    for name, table in sorted(experiments.items()):
        text, figs = experiment_report(name, table)
        blocks.append(Block("p", text))
        blocks += [Block("figure", (f"{name}_{i}" if len(figs) > 1 else name, fig)) for i, fig in enumerate(figs)]
    return blocks


def _detail_blocks(results: pd.DataFrame) -> list[Block]:
    blocks = [Block("h2", "Details")]
    tuned = results[results.status == "ok"].groupby(["prior", "m"])["params"].first().reset_index()
    blocks.append(Block("p", "Parameters used per (prior, m): tuned on the validation split where "
                        "the prior declares a tuning grid, else the prior's fixed (paper) values."))
    blocks.append(Block("table", tuned))
    models = _trained_models(results)
    if not models.empty:
        blocks.append(Block("p", "Trained generators of this dataset (committed checkpoints). The "
                            "representation error min_z ||G(z) - x||^2 / n on held-out images is the "
                            "floor below which a generative prior's error cannot go."))
        blocks.append(Block("table", models))
    links = sorted(set(results.measurement))
    conventions = [f"{link}: {text}" for link, text in CONVENTIONS.items()]
    blocks.append(Block("p", "Metrics: per-pixel MSE on the [0, 1] scale (the paper's metric), PSNR, "
                        f"SSIM. Measurements in this run: {', '.join(links)}. Conventions by link: "
                        + "; ".join(conventions)))
    bad = results[results.status != "ok"].drop_duplicates(["prior", "m", "noise", "status", "error"])
    if not bad.empty:
        blocks.append(Block("p", "Tasks that did not produce results:"))
        blocks.append(Block("table", bad[["prior", "m", "noise", "status", "error"]]))
    return blocks


def _trained_models(results: pd.DataFrame) -> pd.DataFrame:
    from csbench.generative.zoo import catalogue

    rows = [{"model": m["model"], "dataset": m["dataset"], "latent k": m.get("latent_dim"),
             "epochs": m.get("epochs"), "training images": m.get("n_train"),
             "representation error": m.get("representation_error")}
            for m in catalogue() if m["dataset"] in set(results.dataset)]
    return pd.DataFrame(rows)


# -- rendering -------------------------------------------------------------------------------------
def _markdown(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        if b.kind == "h1":
            parts.append(f"# {b.content}")
        elif b.kind == "h2":
            parts.append(f"## {b.content}")
        elif b.kind == "p":
            parts.append(str(b.content))
        elif b.kind == "pre":
            parts.append(str(b.content))
        elif b.kind == "table":
            parts.append(_md_table(b.content))
        elif b.kind == "figure":
            name = b.content[0]
            parts.append(f"![{name}](figures/{name}.png)" + (f"\n\n*{b.caption}*" if b.caption else ""))
    return "\n\n".join(parts) + "\n"


def _md_table(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda value: str(value).replace("|", "\\|"))
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    return "\n".join([header, rule, *("| " + " | ".join(r) + " |" for r in cells.to_numpy())])


def _html(blocks: list[Block], figure_dir: Path) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html.escape(str(b.content))}</{b.kind}>")
        elif b.kind == "p":
            text = html.escape(str(b.content)).replace("**Verdict.**", "<strong>Verdict.</strong>")
            body.append(f"<p>{text}</p>")
        elif b.kind == "pre":
            body.append(f"<pre>{html.escape(str(b.content))}</pre>")
        elif b.kind == "table":
            body.append(b.content.to_html(index=False, border=0, classes="table"))
        elif b.kind == "figure":
            name = b.content[0]
            data = base64.b64encode((figure_dir / f"{name}.png").read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(b.caption)}</figcaption></figure>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
             "color:#222}table{border-collapse:collapse;font-size:.85em;margin:1em 0}"
             "td,th{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left}"
             "img{max-width:100%}figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:1em;"
             "overflow-x:auto}")
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>csbench report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
