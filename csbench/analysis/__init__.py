"""Analysis of a tidy results table: statistics, measurements-to-target, savings, the claim, run comparison.

Figures live in `csbench.analysis.figures` (imported on demand: it loads matplotlib).
"""
from csbench.analysis.claim import claim, headline_target
from csbench.analysis.compare_runs import compare_summaries, comparison_summary, comparison_table
from csbench.analysis.stats import bootstrap_ci, summarize
from csbench.analysis.targets import (FAMILIES, family_members, measurements_to_target,
                                      measurements_to_target_ci, savings_curve, target_crossing, target_grid)

__all__ = ["bootstrap_ci", "summarize", "measurements_to_target", "measurements_to_target_ci",
           "target_crossing", "target_grid", "savings_curve", "FAMILIES", "family_members", "headline_target",
           "claim", "compare_summaries", "comparison_summary", "comparison_table"]
