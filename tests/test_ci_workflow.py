"""The GitHub Actions workflows: csbench.yml is a reusable workflow a plug-in author calls from
their own repository; compare.yml (csbench's own CI) calls it and, rendered with its inputs, runs
the commands of .ci/run. The workflows are rendered the way Actions and bash would, far enough
to read the commands: `${{ inputs.x }}` expressions, then $VAR, ${VAR:+word} and ${VAR//,/ } in run scripts."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REUSABLE = ROOT / ".github/workflows/csbench.yml"
CI_COMMANDS = ["pip install torch==2.13.0", "pip install -e .[dev]", "python -m pytest",
               "python -m csbench compare --preset default --out reports/ci --quiet",
               "python -m csbench report reports/ci --against reports/reference/mnist-default-cpu --fail-on-regression"]


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.get(True, workflow.get("on"))  # PyYAML reads the `on:` key as True
    return workflow


def declared_inputs() -> dict:
    return load(REUSABLE)["on"]["workflow_call"]["inputs"]


def expression(text: str, inputs: dict) -> str:
    """`${{ inputs.x }}` and `${{ inputs.x && 'a' || 'b' }}` with the given inputs."""
    text = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*&&\s*'([^']*)'\s*\|\|\s*'([^']*)'\s*\}\}",
                  lambda m: m.group(2) if inputs[m.group(1)] else m.group(3), text)
    return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: str(inputs[m.group(1)]), text)


def rendered_steps(caller: dict) -> list[tuple[dict, str]]:
    """(step, its run script with inputs and environment substituted, quotes and -q dropped)."""
    inputs = {name: spec.get("default", "") for name, spec in declared_inputs().items()}
    inputs.update(caller)
    job = load(REUSABLE)["jobs"]["csbench"]
    steps = []
    for step in job["steps"]:
        env = {k: expression(str(v), inputs) for k, v in {**job.get("env", {}), **step.get("env", {})}.items()}
        run = re.sub(r"\$\{(\w+):\+([^}]*)\}", lambda m: m.group(2) if env.get(m.group(1)) else "",
                     step.get("run", ""))
        run = re.sub(r"\$\{(\w+)//,/ \}", lambda m: env.get(m.group(1), "").replace(",", " "), run)
        run = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), run)
        steps.append((step, normalised(run)))
    return steps


def normalised(script: str) -> str:
    return re.sub(r"[ \t]+", " ", script.replace('"', "").replace(" -q ", " "))


def step_named(steps, word: str):
    return next((step, run) for step, run in steps if word in step.get("name", "") + step.get("uses", ""))


def callers() -> dict:
    return load(ROOT / ".github/workflows/compare.yml")["jobs"]


def test_the_reusable_workflow_takes_a_plugin_authors_inputs():
    workflow = load(REUSABLE)
    assert set(workflow["on"]) == {"workflow_call"}
    inputs = declared_inputs()
    assert {"csbench", "plugin", "plugin-file", "check", "priors", "preset", "reference",
            "fail-on-regression"} <= set(inputs)
    assert inputs["fail-on-regression"]["type"] == "boolean" and inputs["fail-on-regression"]["default"] is False


def test_csbench_ci_calls_it_and_runs_what_ci_run_runs():
    jobs = callers()
    assert jobs["compare"]["uses"] == "./.github/workflows/csbench.yml"
    commands = "\n".join(run for _, run in rendered_steps(jobs["compare"]["with"]))
    ci = normalised((ROOT / ".ci/run").read_text())
    for command in CI_COMMANDS:
        assert command in commands and command in ci, command
    assert commands.index("pip install torch==2.13.0 --index-url") < commands.index("pip install -e .[dev]")
    packages = jobs["compare"]["with"]["apt-packages"].split()
    assert all(package in ci for package in packages) and "dataset-fashion-mnist" in packages
    workflow = load(ROOT / ".github/workflows/compare.yml")
    assert "pull_request" in workflow["on"]


def test_every_caller_passes_only_declared_inputs():
    template = re.search(r"```yaml\n(.*?)```", (ROOT / "docs/plugins.md").read_text(), re.DOTALL).group(1)
    author = yaml.safe_load(template)["jobs"]["csbench"]
    assert author["uses"].endswith("/.github/workflows/csbench.yml@main")
    for job in [*callers().values(), author]:
        assert set(job["with"]) <= set(declared_inputs()), job["with"]


def test_the_examples_job_checks_both_example_plugins():
    steps = rendered_steps(callers()["examples"]["with"])
    install, check = step_named(steps, "Install PyTorch")[1], step_named(steps, "csbench check")[1]
    assert "pip install ./examples/csbench-db4" in install
    assert "for target in examples/min_norm_prior.py lasso-db4;" in check
    compare = step_named(steps, "csbench compare")[1]
    assert "--priors lasso-db4,min-norm,lasso-wavelet,vae --plugin examples/min_norm_prior.py --m 25,100" in compare


def test_the_report_is_always_uploaded_and_summarised_readably():
    steps = rendered_steps({"reference": "ci/reference"})
    upload, _ = step_named(steps, "actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ inputs.out }}"
    summary, script = step_named(steps, "summary")
    assert summary["if"] == "always()" and "GITHUB_STEP_SUMMARY" in script
    assert "section claim.json reports/ci/claim.json json" in script  # fenced as ```json
    assert "report.md" not in script and "![" not in script  # no relative images that would break
    assert "figures/savings.png" in script and "artifact" in script
    for step, _ in steps:  # every step after the install still runs when an earlier one failed
        if step.get("name", "").startswith(("Check", "Compare")):
            assert "!cancelled()" in step["if"]


@pytest.mark.parametrize("gate", [True, False])
def test_regressions_gate_the_job_only_when_asked(gate):
    steps = rendered_steps({"reference": "ci/reference", "fail-on-regression": gate})
    against = step_named(steps, "report --against")[1]
    command = "python -m csbench report reports/ci --against ci/reference"
    assert (command + " --fail-on-regression" in against) is gate and command in against


def test_the_comparison_with_the_reference_checks_the_plugins_results_against_its_code():
    steps = rendered_steps({"reference": "ci/reference", "plugin-file": "my_prior.py"})
    against = step_named(steps, "report --against")[1]
    assert "report reports/ci --against ci/reference --plugin my_prior.py" in against


def test_a_failing_command_fails_its_step_through_the_tee():
    job = load(REUSABLE)["jobs"]["csbench"]
    assert job["defaults"]["run"]["shell"] == "bash"  # Actions runs it with -eo pipefail
    check = step_named(rendered_steps({"check": "a,b"}), "csbench check")[1]
    assert "|| status=1" in check and "exit $status" in check
