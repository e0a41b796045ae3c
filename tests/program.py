"""Run the whole Pulumi program under mocks and record what it registers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import runpy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from unittest.mock import patch

import pulumi

from settings.stack_file import stack_values as read_stack_values

ROOT = Path(__file__).resolve().parent.parent

# What pulumi-random would produce; '+' and '/' check the URL-safe conversion.
FAKE_BYTES_BASE64 = "ab+cd/ef" * 5 + "ghi="
FAKE_PASSWORD = "generated-password-0123456789"
SLOW_SECONDS = 0.3


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]


@dataclass
class Export:
    value: Any
    secret: bool


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # Resource options as the program passed them, by (type, name): mocks never see them.
    options: dict[tuple[str, str], pulumi.ResourceOptions] = field(default_factory=dict)
    # Objects read from the cluster (`<namespace>/<name>`).
    reads: list[str] = field(default_factory=list)
    error: Optional[BaseException] = None

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str) -> Registered:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, got {[r.name for r in found]}"
        return found[0]

    def named(self, typ: str, name: str) -> Registered:
        return next(r for r in self.of_type(typ) if r.name == name)


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, run: ProgramRun, cluster: "FakeCluster", slow: frozenset[str] = frozenset()):
        self.run, self.cluster, self.slow = run, cluster, slow

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.typ in self.slow:
            # Created slowly, like a real one (mocks run in a thread pool): whatever does not wait for
            # it registers first, so the recorded order shows what truly depends on it.
            time.sleep(SLOW_SECONDS)
        if args.resource_id and args.typ == "kubernetes:core/v1:Secret":
            # A read (`Secret.get`) of a Secret the program did not create: the fake cluster holds it.
            name = args.resource_id.split("/")[-1]
            data = {k: base64.b64encode(v.encode()).decode() for k, v in self.cluster.secrets.get(name, {}).items()}
            self.run.reads.append(args.resource_id)
            return args.resource_id, {"metadata": {"name": name}, "data": data}
        state = json.loads(json.dumps(args.inputs))
        if args.typ.startswith("kubernetes:"):
            meta = state.setdefault("metadata", {})
            if "name" not in meta:
                # Like Pulumi's auto-naming on replacement: new content, new name.
                digest = hashlib.sha256(json.dumps(args.inputs, sort_keys=True).encode()).hexdigest()
                meta["name"] = f"{args.name}-{digest[:8]}"
        elif args.typ == "random:index/randomBytes:RandomBytes":
            state.update(base64=FAKE_BYTES_BASE64, hex="00" * 32)
        elif args.typ == "random:index/randomPassword:RandomPassword":
            state.update(result=FAKE_PASSWORD)
        if args.typ == "pulumi:pulumi:Stack":
            return f"{args.name}_id", state
        self.run.resources.append(Registered(args.typ, args.name, args.inputs, state))
        return f"{args.name}_id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def stack_values(stack: str) -> dict[str, Any]:
    """The `langflow:` values the CLI hands a stack: Pulumi.yaml's defaults, then the stack file."""
    return read_stack_values(ROOT, stack)


def pulumi_config_env(values: dict[str, Any]) -> str:
    """PULUMI_CONFIG as the engine passes it: objects as JSON text, scalars as text."""
    def text(value: Any) -> str:
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return json.dumps({f"langflow:{k}": text(v) for k, v in values.items()})


class FakeCluster:
    """What the program reads from the cluster: namespaces (metadata), Secrets (data), claims (annotations), CRDs."""

    def __init__(self, namespaces: Optional[dict[str, dict[str, Any]]] = None,
                 secrets: Optional[dict[str, dict[str, str]]] = None,
                 claims: Optional[dict[str, dict[str, str]]] = None, crds: tuple[str, ...] = ()):
        self.namespaces, self.secrets, self.claims, self.crds = namespaces or {}, secrets or {}, claims or {}, crds

    def __call__(self, *args: Any, **kwargs: Any) -> "FakeCluster":  # stands in for the KubeconfigCluster class
        return self

    def namespace(self, name: str) -> Optional[dict[str, Any]]:
        return self.namespaces.get(name)

    def secret_keys(self, namespace: str, name: str) -> Optional[set[str]]:
        return set(self.secrets[name]) if name in self.secrets else None

    def claim_annotations(self, namespace: str, name: str) -> Optional[dict[str, str]]:
        return self.claims.get(name)

    def has_crd(self, name: str) -> bool:
        return name in self.crds


def run_program(
    values: dict[str, Any],
    stack: str = "test",
    project_dir: Optional[Path] = None,
    cluster: Optional[FakeCluster] = None,
    slow: frozenset[str] = frozenset(),
) -> ProgramRun:
    """Run __main__.py under mocks; `project_dir` gets a copy of it, to hold flows of its own.

    `slow`: resource types whose creation takes a moment, to show in `resources` what waits for them.
    """
    run = ProgramRun()
    main = ROOT / "__main__.py"
    if project_dir is not None:
        main = project_dir / "__main__.py"
        main.write_text((ROOT / "__main__.py").read_text())
    previous = os.environ.get("PULUMI_CONFIG")
    os.environ["PULUMI_CONFIG"] = pulumi_config_env(values)
    try:
        cluster = cluster or FakeCluster()
        pulumi.runtime.set_mocks(RecordingMocks(run, cluster, slow), project="langflow", stack=stack, preview=False)

        exports: dict[str, pulumi.Output] = {}

        def record_export(name: str, value: Any) -> None:
            exports[name] = pulumi.Output.from_input(value)

        async def resolve_exports() -> None:
            for name, output in exports.items():
                run.outputs[name] = Export(await output.future(), await output.is_secret())

        original_init = pulumi.Resource.__init__

        def record_options(resource, t, name, custom=False, props=None, opts=None, *args, **kwargs):
            run.options[(t, name)] = opts or pulumi.ResourceOptions()
            original_init(resource, t, name, custom, props, opts, *args, **kwargs)

        @pulumi.runtime.test
        def program():
            with patch.object(pulumi, "export", record_export), \
                    patch.object(pulumi.Resource, "__init__", record_options), \
                    patch("settings.cluster.KubeconfigCluster", cluster):
                runpy.run_path(str(main), run_name="__main__")
            return pulumi.Output.from_input(asyncio.ensure_future(resolve_exports()))

        try:
            program()
        except pulumi.RunError as error:
            run.error = error
    finally:
        if previous is None:
            os.environ.pop("PULUMI_CONFIG", None)
        else:
            os.environ["PULUMI_CONFIG"] = previous
    return run

