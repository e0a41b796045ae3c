"""How the simulated kubelet (kwok) moves pods through their lives: kwok Stage documents.

kwok's built-in "fast" stages make every pod ready at once and delete it at once. These do
the same, with two differences that make releases on the local cluster behave as they do
on a real one:

- A pod with a container named `langflow` takes as long to stop as a real, idle Langflow
  takes to exit on SIGTERM, measured with `make verify` (tests/langflow/test_verify.py holds
  the figure to the measurement). Other pods stop at once, as the small proxies they
  stand for nearly do.
- An image from the registry host `never-ready.localcluster.invalid` never becomes ready:
  its pods run but fail their readiness probe, and a Job's pods fail. Tests use it for a
  release whose rollout fails.
"""

from __future__ import annotations

import json

# Measured with `make verify` (the "stops on SIGTERM" check), idle Langflow after serving:
# 1.6.4 2.9 s, 1.13.0 2.6 s (2026-12-01); with its Prometheus endpoint on (the default since [10]),
# 1.6.4 4.1 to 4.7 s, 1.13.0 4.2 s (2026-12-03, this machine; without it 3.7 to 4.0 s).
LANGFLOW_STOP_SECONDS = 4.2
NEVER_READY_REGISTRY = "never-ready.localcluster.invalid"

_NEVER_READY = f'.spec.containers.[].image | startswith("{NEVER_READY_REGISTRY}/")'
_IS_LANGFLOW = ".spec.containers.[].name"


def _stage(name: str, selector: list[dict], next_: dict, delay_ms: int = 0) -> dict:
    spec: dict = {"resourceRef": {"apiGroup": "v1", "kind": "Pod"},
                  "selector": {"matchExpressions": selector}, "next": next_}
    if delay_ms:
        spec["delay"] = {"durationMilliseconds": delay_ms}
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


def _expr(key: str, operator: str, *values: str) -> dict:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def _running(ready: bool) -> str:
    """A statusTemplate: scheduled, an IP, every container running, ready or not."""
    flag = "true" if ready else "false"
    condition = "True" if ready else "False"
    return f"""\
{{{{ $now := Now }}}}
conditions:
- {{type: Initialized, status: "True", lastTransitionTime: {{{{ $now | Quote }}}}}}
- {{type: Ready, status: "{condition}", lastTransitionTime: {{{{ $now | Quote }}}}}}
- {{type: ContainersReady, status: "{condition}", lastTransitionTime: {{{{ $now | Quote }}}}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: {flag}
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
hostIP: {{{{ NodeIPWith .spec.nodeName | Quote }}}}
podIP: {{{{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}}}
phase: Running
startTime: {{{{ $now | Quote }}}}
"""


def _ended(phase: str, exit_code: int, reason: str) -> str:
    return f"""\
{{{{ $now := Now }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  started: false
  restartCount: 0
  state:
    terminated:
      exitCode: {exit_code}
      reason: {reason}
      startedAt: {{{{ $now | Quote }}}}
      finishedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: {phase}
"""


def pod_stages(langflow_start_seconds: float = 0.0, langflow_stop_seconds: float = LANGFLOW_STOP_SECONDS) -> list[dict]:
    """The stages; a Langflow pod becomes ready `langflow_start_seconds` after it is created (0: at once, as
    the integration tests want it; the benchmark's end-to-end figures give it a real start's time) and is
    gone `langflow_stop_seconds` after its deletion."""
    alive = _expr(".metadata.deletionTimestamp", "DoesNotExist")
    new = _expr(".status.podIP", "DoesNotExist")
    of_job = _expr(".metadata.ownerReferences.[].kind", "In", "Job")
    running = _expr(".status.phase", "In", "Running")
    deleted = _expr(".metadata.deletionTimestamp", "Exists")
    can_be_ready = _expr(_NEVER_READY, "NotIn", "true")
    return [
        _stage("langflow-pod-ready", [alive, new, can_be_ready, _expr(_IS_LANGFLOW, "In", "langflow")],
               {"statusTemplate": _running(True)}, delay_ms=int(langflow_start_seconds * 1000)),
        _stage("pod-ready", [alive, new, can_be_ready, _expr(_IS_LANGFLOW, "NotIn", "langflow")],
               {"statusTemplate": _running(True)}),
        _stage("pod-never-ready", [alive, new, _expr(_NEVER_READY, "In", "true")],
               {"statusTemplate": _running(False)}),
        _stage("pod-complete", [alive, running, of_job, _expr(_NEVER_READY, "NotIn", "true")],
               {"statusTemplate": _ended("Succeeded", 0, "Completed")}),
        _stage("pod-fail", [alive, running, of_job, _expr(_NEVER_READY, "In", "true")],
               {"statusTemplate": _ended("Failed", 1, "Error")}),
        _stage("langflow-pod-delete", [deleted, _expr(_IS_LANGFLOW, "In", "langflow")],
               {"finalizers": {"empty": True}, "delete": True}, delay_ms=int(langflow_stop_seconds * 1000)),
        _stage("pod-delete", [deleted, _expr(_IS_LANGFLOW, "NotIn", "langflow")],
               {"finalizers": {"empty": True}, "delete": True}),
    ]


def kwok_config(langflow_start_seconds: float = 0.0, langflow_stop_seconds: float = LANGFLOW_STOP_SECONDS) -> str:
    """kwok's --config file: the stages, one YAML document each (JSON is YAML)."""
    stages = pod_stages(langflow_start_seconds, langflow_stop_seconds)
    return "\n---\n".join(json.dumps(stage) for stage in stages) + "\n"
