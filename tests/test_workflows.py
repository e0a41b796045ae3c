"""The GitHub Actions workflows (.github/workflows/) as data: what they promise, checked without running them.

* one update at a time per stack: every deploy job (`make up`) is in the stack's concurrency group and is
  never cancelled; previews (which take no lock) have groups of their own per stack and pull request, so
  they never displace a pending deploy;
* prod is released after dev, behind the `production` environment (manual approval);
* pull requests: `make test` and `make verify` for both stacks first, then a preview of each stack
  with the policy pack, posted on the pull request;
* the backend URL, the passphrases and the kubeconfigs come from secrets, never from literals;
* least privilege, actions pinned, and the contracts with the scripts the workflows call.

actionlint's own checks are in tests/integration/test_workflows_real.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
STACKS = ("dev", "prod")
SECRET = re.compile(r"^\$\{\{\s*secrets(\.[A-Za-z0-9_]+|\[[^\]]+\])\s*\}\}$")


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.yml"))}


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict, action: str) -> list[dict]:
    return [step for step in steps(job) if step.get("uses", "").split("@")[0] == action]


def matrix_rows(job: dict) -> list[dict]:
    """The matrix's combinations (this repository's workflows use `include` rows only), or one empty row."""
    matrix = (job.get("strategy") or {}).get("matrix")
    if not matrix:
        return [{}]
    assert set(matrix) == {"include"}, "only `include` matrices are expanded here"
    return matrix["include"]


def expand(value, row: dict):
    """A value with `${{ matrix.x }}` replaced by the row's values."""
    if isinstance(value, str):
        return re.sub(r"\$\{\{\s*matrix\.([\w-]+)\s*\}\}", lambda m: str(row[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: expand(v, row) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v, row) for v in value]
    return value


def stacks_touched(job: dict, row: dict) -> set[str]:
    """The stacks a job (one matrix row) runs pulumi on: `make up|rollback|... STACK=x`, scripts/pulumi.sh x,
    pulumi --stack x, or pulumi/actions with stack-name x."""
    found = set()
    text = expand(runs(job), row)
    found |= set(re.findall(r"\bmake\s+(?:up|preview|destroy|recover|releases|rollback|restore)\b[^\n]*\bSTACK=(\w+)",
                            text))
    found |= set(re.findall(r"scripts/(?:pulumi|stack-env)\.sh\s+(\w+)", text))
    found |= set(re.findall(r"\bpulumi\b[^\n]*--stack[ =](\w+)", text))
    for step in uses(job, "pulumi/actions"):
        found.add(expand(step["with"]["stack-name"], row))
    return found


def stack_jobs(workflows):
    """(workflow, job id, matrix row, job as run for that row, its stack) for every job row that touches a stack."""
    out = []
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for row in matrix_rows(job):
                touched = stacks_touched(job, row)
                assert len(touched) <= 1, f"{name}:{job_id} touches several stacks: {touched}"
                if touched:
                    out.append((name, job_id, row, expand(job, row), touched.pop()))
    return out


def secret_name(expression: str, row: dict) -> str:
    """The name of the secret an expression reads: `secrets.NAME`, or `secrets[format('NAME_{0}', matrix.x)]`
    with the matrix row's value."""
    match = SECRET.match(expression)
    assert match, f"{expression!r} is not a secret"
    ref = match.group(1)
    if ref.startswith("."):
        return ref[1:]
    formatted = re.fullmatch(r"\[format\('([\w{}]+)',\s*matrix\.([\w-]+)\)\]", ref)
    assert formatted, f"unexpected secret index {ref!r}"
    return formatted.group(1).replace("{0}", str(row[formatted.group(2)]))


def all_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from all_strings(key)
            yield from all_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_strings(item)


def env_values(workflow: dict, key_pattern: str):
    """(where, value) for every env entry, or action input, whose name matches."""
    pattern = re.compile(key_pattern)
    scopes = [("workflow", workflow.get("env") or {})]
    for job_id, job in workflow["jobs"].items():
        scopes.append((job_id, job.get("env") or {}))
        for step in steps(job):
            scopes.append((f"{job_id}/{step.get('name') or step.get('uses')}", step.get("env") or {}))
            scopes.append((f"{job_id}/{step.get('uses')} input", step.get("with") or {}))
    for where, mapping in scopes:
        for key, value in mapping.items():
            if pattern.fullmatch(key):
                yield f"{where}: {key}", value


# ------------------------------------------------------------------ the files


def test_both_workflows_exist_with_their_triggers(workflows):
    assert set(workflows) >= {"pull-request.yml", "deploy.yml"}
    pr, deploy = workflows["pull-request.yml"], workflows["deploy.yml"]
    assert pr["on"] == {"pull_request": {"branches": ["main"]}}
    assert deploy["on"]["push"] == {"branches": ["main"]}
    assert "workflow_dispatch" in deploy["on"]


# ------------------------------------------------------------------ one run per stack


def test_every_stack_job_has_a_concurrency_group_per_stack(workflows):
    jobs = stack_jobs(workflows)
    assert {(name, stack) for name, _, _, _, stack in jobs} == {
        ("pull-request.yml", "dev"), ("pull-request.yml", "prod"), ("deploy.yml", "dev"), ("deploy.yml", "prod")}
    for name, job_id, row, job, stack in jobs:
        concurrency = job.get("concurrency")
        assert isinstance(concurrency, dict), f"{name}:{job_id} {row or ''}: no concurrency group"
        assert stack in concurrency["group"].replace("${{ matrix.stack }}", stack), (name, job_id)


def test_deploys_of_one_stack_run_one_at_a_time_and_are_never_cancelled(workflows):
    for name, job_id, row, job, stack in stack_jobs(workflows):
        if name != "deploy.yml":
            continue
        assert job["concurrency"]["group"] == f"pulumi-{stack}", job_id
        # Explicitly false: a cancelled update leaves the stack locked by a runner that is gone.
        assert job["concurrency"].get("cancel-in-progress") is False, job_id
        assert "timeout-minutes" not in job, f"{job_id}: a timeout cancels the update like a cancel would"


def test_previews_never_queue_in_a_deploy_group(workflows):
    # GitHub keeps one pending job per group and replaces it with a newer one: a preview there could
    # displace a deploy that waits its turn.
    preview = workflows["pull-request.yml"]["jobs"]["preview"]
    group = preview["concurrency"]["group"]
    assert not group.startswith("pulumi-") and "github.event.pull_request.number" in group
    assert "${{ matrix.stack }}" in group


def test_no_workflow_level_concurrency_can_cancel_a_stack_job(workflows):
    for name, workflow in workflows.items():
        concurrency = workflow.get("concurrency")
        assert not (isinstance(concurrency, dict) and concurrency.get("cancel-in-progress")), name
        assert not isinstance(concurrency, str), f"{name}: a workflow-level group would queue previews behind tests"


def test_only_the_pull_requests_own_test_runs_are_cancelled(workflows):
    test = workflows["pull-request.yml"]["jobs"]["test"]
    assert "github.event.pull_request.number" in test["concurrency"]["group"]
    assert not test["concurrency"]["group"].startswith("pulumi-")
    assert test["concurrency"]["cancel-in-progress"] is True
    assert stacks_touched(test, {}) == set()
    assert "secrets." not in str(test) and "secrets[" not in str(test), "the tests run the PR's code without secrets"


# ------------------------------------------------------------------ deploy: dev, then prod with approval


def test_prod_is_deployed_after_dev_behind_the_production_environment(workflows):
    jobs = workflows["deploy.yml"]["jobs"]
    by_stack = {stack: job_id for name, job_id, _, _, stack in stack_jobs(workflows) if name == "deploy.yml"}
    dev, prod = jobs[by_stack["dev"]], jobs[by_stack["prod"]]

    def environment(job):
        env = job.get("environment")
        return env["name"] if isinstance(env, dict) else env

    needs = prod.get("needs")
    assert by_stack["dev"] in ([needs] if isinstance(needs, str) else needs or [])
    assert environment(prod) == "production"
    assert environment(dev) == "dev"


def test_deploys_apply_with_make_up_and_never_with_the_actions_up(workflows):
    for name, job_id, _, job, stack in stack_jobs(workflows):
        if name == "deploy.yml":
            assert re.search(rf"^make up STACK={stack}$", runs(job), re.M), job_id
        for step in uses(job, "pulumi/actions"):
            assert step["with"]["command"] == "preview", f"{name}:{job_id} applies with pulumi/actions"


def test_deploys_never_fall_back_to_the_local_simulated_cluster(workflows):
    # scripts/stack-env.sh starts the local cluster when LANGFLOW_CLUSTER is auto (or local) and it finds
    # no kubeconfig; the deploys set it to anything else.
    stack_env = (ROOT / "scripts" / "stack-env.sh").read_text()
    assert '"${LANGFLOW_CLUSTER:-auto}" = local' in stack_env and '"${LANGFLOW_CLUSTER:-auto}" = auto' in stack_env
    for name, job_id, _, job, _ in stack_jobs(workflows):
        if name == "deploy.yml":
            assert job["env"].get("LANGFLOW_CLUSTER") not in (None, "", "auto", "local"), job_id


# ------------------------------------------------------------------ pull requests


def test_pull_requests_run_every_test_and_verify_both_stacks_before_previews(workflows):
    jobs = workflows["pull-request.yml"]["jobs"]
    test = jobs["test"]
    commands = [line.strip() for line in runs(test).splitlines()]
    for command in ("make test", "make verify STACK=dev", "make verify STACK=prod"):
        assert command in commands, command
    assert str(test["env"]["CI"]).lower() == "true"
    assert commands.index("make test") < commands.index("make verify STACK=dev")
    for name, job_id, _, job, _ in stack_jobs(workflows):
        if name == "pull-request.yml":
            needs = job.get("needs")
            assert "test" in ([needs] if isinstance(needs, str) else needs or []), job_id


def test_previews_use_the_policy_pack_and_comment_on_the_pull_request(workflows):
    previews = [(job_id, job, stack) for name, job_id, _, job, stack in stack_jobs(workflows)
                if name == "pull-request.yml"]
    assert sorted(stack for _, _, stack in previews) == sorted(STACKS)
    for job_id, job, stack in previews:
        (step,) = uses(job, "pulumi/actions")
        assert step["uses"] == "pulumi/actions@v6"
        assert step["with"]["command"] == "preview"
        assert step["with"]["stack-name"] == stack
        assert step["with"]["policyPacks"] == "policy"
        assert step["with"]["comment-on-pr"] is True
        assert SECRET.match(step["with"]["cloud-url"]), step["with"]["cloud-url"]


def test_previews_run_in_the_programs_virtualenv_from_the_locked_requirements(workflows):
    pulumi_yaml = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert pulumi_yaml["runtime"]["name"] == "python"
    venv = pulumi_yaml["runtime"]["options"]["virtualenv"]
    for name, job_id, _, job, _ in stack_jobs(workflows):
        if name != "pull-request.yml":
            continue
        text = runs(job)
        assert re.search(rf"python -m venv {re.escape(venv)}$", text, re.M), job_id
        assert re.search(rf"{re.escape(venv)}/bin/pip install .*--require-hashes -r requirements\.txt", text), job_id
        order = [step.get("uses", "").split("@")[0] or step.get("run", "") for step in steps(job)]
        venv_step = next(i for i, s in enumerate(order) if "--require-hashes" in s)
        assert venv_step < order.index("pulumi/actions"), job_id


# ------------------------------------------------------------------ secrets


def test_backend_url_and_passphrases_come_from_secrets(workflows):
    for name, workflow in workflows.items():
        found = list(env_values(workflow, r"PULUMI_BACKEND_URL|PULUMI_CONFIG_PASSPHRASE\w*|cloud-url"))
        for where, value in found:
            assert isinstance(value, str) and SECRET.match(value), f"{name} {where}: {value!r} is not a secret"
        # Every job that touches a stack has both.
        for n, job_id, _, job, _ in stack_jobs({name: workflow}):
            assert SECRET.match(job["env"]["PULUMI_BACKEND_URL"]), f"{n}:{job_id}"
            assert SECRET.match(job["env"]["PULUMI_CONFIG_PASSPHRASE"]), f"{n}:{job_id}"


def test_no_backend_url_passphrase_or_kubeconfig_as_a_literal(workflows):
    backend = re.compile(r"\b(?:s3|gs|azblob|file|https?)://", re.I)
    for name, workflow in workflows.items():
        for value in all_strings(workflow):
            if value.startswith("${{") and SECRET.match(value):
                continue
            # Links to the run are fine: they are built from the github context, not written out.
            without_expressions = re.sub(r"\$\{\{.*?\}\}", "", value)
            assert not backend.search(without_expressions), f"{name}: {value!r}"
            assert "langflow-dev" not in value, f"{name}: a passphrase as a literal"
            assert "apiVersion: v1" not in value and "client-key-data" not in value, f"{name}: a kubeconfig"


def test_every_stack_job_gets_its_own_stacks_secrets(workflows):
    # One passphrase and one kubeconfig per stack (dev's salt is made with its documented passphrase; the
    # stacks usually live on different clusters), one backend for both.
    for name, job_id, row, job, stack in stack_jobs(workflows):
        where = f"{name}:{job_id} {row or ''}"
        assert secret_name(job["env"]["PULUMI_BACKEND_URL"], row) == "PULUMI_BACKEND_URL", where
        assert secret_name(job["env"]["PULUMI_CONFIG_PASSPHRASE"], row) == f"PULUMI_CONFIG_PASSPHRASE_{stack.upper()}", \
            where
        written = [step for step in steps(job) if "KUBECONFIG=" in step.get("run", "")]
        assert len(written) == 1, f"{where}: KUBECONFIG is not set once"
        (step,) = written
        assert secret_name(step["env"]["KUBECONFIG_CONTENT"], row) == f"KUBECONFIG_{stack.upper()}", where
        # A file outside the checkout (a release must not see it as a changed file), readable by the runner only.
        assert "umask 077" in step["run"] and '"$RUNNER_TEMP/kubeconfig"' in step["run"], where
        assert 'echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"' in step["run"], where
        for action in uses(job, "pulumi/actions"):
            assert secret_name(action["with"]["cloud-url"], row) == "PULUMI_BACKEND_URL", where


def test_secrets_never_expand_inside_scripts(workflows):
    # A secret in a run script becomes part of the script; through env it stays data.
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in steps(job):
                assert not re.search(r"\$\{\{[^}]*\bsecrets\b", step.get("run", "")), f"{name}:{job_id}: {step.get('name')}"


# ------------------------------------------------------------------ privileges, pins, toolchain cache


def test_least_privilege(workflows):
    for name, workflow in workflows.items():
        assert workflow["permissions"] == {"contents": "read"}, name
        for job_id, job in workflow["jobs"].items():
            permissions = job.get("permissions")
            if permissions is None:
                continue
            writes = {scope for scope, level in permissions.items() if level == "write"}
            if uses(job, "pulumi/actions") and any(s["with"].get("comment-on-pr") for s in uses(job, "pulumi/actions")):
                assert writes == {"pull-requests"}, f"{name}:{job_id}"
                assert permissions.get("contents") == "read", f"{name}:{job_id}"
            else:
                assert not writes, f"{name}:{job_id}"


def test_every_action_is_pinned_to_a_major_version_at_least(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in steps(job):
                action = step.get("uses")
                if not action or action.startswith("./"):
                    continue
                ref = action.partition("@")[2]
                assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", ref), f"{name}:{job_id}: {action}"
                assert not action.startswith("docker://"), action


def test_checkouts_keep_no_credentials(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in uses(job, "actions/checkout"):
                assert (step.get("with") or {}).get("persist-credentials") is False, f"{name}:{job_id}"


def test_toolchain_jobs_cache_the_build_keyed_on_its_inputs(workflows):
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            if "toolchain/build.sh" not in runs(job) and not stacks_touched(job, matrix_rows(job)[0]):
                continue
            (setup_go,) = uses(job, "actions/setup-go")
            assert str(setup_go["with"]["go-version"]) == "1.26"
            (python,) = uses(job, "actions/setup-python")
            assert str(python["with"]["python-version"]) == "3.11"
            (restore,) = uses(job, "actions/cache/restore")
            paths = restore["with"]["path"].split()
            assert "~/.cache/langflow-pulumi-toolchain" in paths and "~/go/pkg/mod" in paths, f"{name}:{job_id}"
            assert "hashFiles('toolchain/**', 'requirements.txt')" in restore["with"]["key"], f"{name}:{job_id}"
            (save,) = uses(job, "actions/cache/save")
            assert save["with"]["path"] == restore["with"]["path"]
            order = [step.get("uses", "").split("@")[0] or step.get("run", "") for step in steps(job)]
            build = next(i for i, s in enumerate(order) if "toolchain/build.sh" in s)
            assert order.index("actions/cache/restore") < build < order.index("actions/cache/save"), f"{name}:{job_id}"
