"""Analysis of a tidy results table: statistics, measurements-to-target, savings, the claim, run comparison.

Figures live in `csbench.analysis.figures` (imported on demand: it loads matplotlib).
"""
from csbench.analysis.claim import claim, headline_target
from csbench.analysis.compare_runs import compare_summaries, comparison_summary, comparison_table
from csbench.analysis.stats import bootstrap_ci, summarize
from csbench.analysis.targets import FAMILIES, crossing_m, family_members, savings_curve, target_grid

__all__ = ["bootstrap_ci", "summarize", "crossing_m", "target_grid", "savings_curve", "FAMILIES",
           "family_members", "headline_target",
           "claim", "compare_summaries", "comparison_summary", "comparison_table"]
