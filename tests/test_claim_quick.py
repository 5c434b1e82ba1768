"""The quick preset's claim.json holds every comparison, and `compare` prints both verdicts."""
import json

import pytest

from csbench.analysis.claim import CLAIM_KEYS, COMPARISONS

pytestmark = pytest.mark.slow  # reads the shared quick run


def test_quick_claim_has_every_comparison_and_both_verdicts_are_printed(quick_run):
    out, proc = quick_run
    claim = json.loads((out / "claim.json").read_text())
    records = {"published": claim, **{name: claim[name] for name in COMPARISONS}}
    for name, record in records.items():
        assert set(CLAIM_KEYS) | {"target_rule", "comparison_rule", "verdict"} <= set(record), name
        assert record["generative_prior"] == "vae" and record["sparsity_prior"].startswith("lasso"), name
        assert record["ratio"] == pytest.approx(record["m_sparsity"] / record["m_generative"]), name
        low, high = record["ratio_ci"]
        assert low <= record["ratio"] <= high and record["reproduced"] == (low >= 5), name
    line = next(line for line in proc.stdout.splitlines() if line.startswith("claim: "))
    first, second = line.removeprefix("claim: ").split(". ")
    assert first.startswith(f"{claim['ratio']:.1f}x") and "claim as published" in first
    assert second.startswith(f"{claim['strongest']['ratio']:.1f}x") and "against the strongest baseline" in second
    assert (out / "figures" / "savings.png").stat().st_size > 0
