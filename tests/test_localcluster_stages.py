"""The simulated kubelet's stages (localcluster/stages.py): how long a simulated Langflow pod takes.

That kwok honours a stage's delay is shown on a real cluster (tests/integration/test_localcluster.py: a Langflow
pod's stop); these show which stage gets which delay, as the benchmark's two modes set them.
"""

from __future__ import annotations

import json

from localcluster.stages import LANGFLOW_STOP_SECONDS, kwok_config, pod_stages


def _delays(stages: list[dict]) -> dict[str, int]:
    return {s["metadata"]["name"]: s["spec"].get("delay", {}).get("durationMilliseconds", 0) for s in stages}


def _langflow_only(stage: dict) -> bool:
    return any(e["key"] == ".spec.containers.[].name" and e["operator"] == "In" and e["values"] == ["langflow"]
               for e in stage["spec"]["selector"]["matchExpressions"])


def test_by_default_langflow_pods_start_at_once_and_stop_as_slowly_as_a_real_one():
    delays = _delays(pod_stages())
    assert delays["langflow-pod-ready"] == 0 and delays["pod-ready"] == 0
    assert delays["langflow-pod-delete"] == int(LANGFLOW_STOP_SECONDS * 1000) and delays["pod-delete"] == 0


def test_a_start_delay_holds_back_only_langflow_pods():
    stages = {s["metadata"]["name"]: s for s in pod_stages(langflow_start_seconds=30, langflow_stop_seconds=0)}
    assert _delays(list(stages.values())) == {
        "langflow-pod-ready": 30000, "pod-ready": 0, "pod-never-ready": 0, "pod-complete": 0, "pod-fail": 0,
        "langflow-pod-delete": 0, "pod-delete": 0}
    assert _langflow_only(stages["langflow-pod-ready"]) and not _langflow_only(stages["pod-ready"])
    documents = [json.loads(doc) for doc in kwok_config(30, 0).split("\n---\n")]
    assert documents == pod_stages(30, 0)
