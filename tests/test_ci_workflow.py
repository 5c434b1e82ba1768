"""The GitHub Actions workflow is valid YAML and runs the same commands as .ci/run."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_workflow_runs_the_ci_commands():
    workflow = yaml.safe_load((ROOT / ".github/workflows/compare.yml").read_text())
    steps = workflow["jobs"]["compare"]["steps"]
    commands = "\n".join(step.get("run", "") for step in steps).replace(" -q ", " ")
    ci = (ROOT / ".ci/run").read_text().replace(" -q ", " ")
    for command in ["pip install torch==2.13.0", "python -m pytest",
                    "python -m csbench compare --preset quick --out reports/ci --quiet",
                    "python -m csbench report reports/ci --against reports/reference/mnist"]:
        assert command in commands and command in ci, command
    assert any(step.get("uses", "").startswith("actions/upload-artifact") for step in steps)
    assert "GITHUB_STEP_SUMMARY" in commands
    triggers = workflow.get(True, workflow.get("on"))  # PyYAML reads the `on:` key as True
    assert triggers and "pull_request" in triggers
