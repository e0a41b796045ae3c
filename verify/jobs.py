"""Run a Job's pod as the program renders it, here: each container in order, in the pod's sandbox.

For the backup Jobs (components/backups/spec.py). Each container runs as `make verify` runs
Langflow's (verify/sandbox.py): a read-only root, the pod's volumes at their mount paths (host
folders here), the pod's user and fsGroup. An image is stood in for by a folder of its programs:
the Langflow image by the Langflow release's virtualenv (its `python`), the postgres image by
Debian's PostgreSQL programs. A Secret's value comes from `secrets`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from verify.postgres import expand
from verify.sandbox import Mount, Sandbox


@dataclass
class PodRun:
    ok: bool
    status: int  # the exit status of the container that ended the pod
    output: str


def run_pod(pod: dict[str, Any], images: dict[str, list[Path]], volumes: dict[str, Path], secrets: dict[str, str],
            env: Optional[dict[str, str]] = None, timeout: float = 300) -> PodRun:
    """Init containers, then containers, each to its end; the first failure ends the pod, as in a Job.

    `images`: per image, the folders of its programs (the first goes on PATH); `volumes`: per volume
    name, its host folder; `env` overrides the pod's, as the env of a Job started from a template does."""
    spec = pod["spec"]
    security = spec["securityContext"]
    output = []
    for container in spec.get("initContainers", []) + spec["containers"]:
        values = {}
        for item in container.get("env", []):
            if "value" in item:
                values[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                values[item["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
        values.update(env or {})
        folders = images[container["image"]]
        values["PATH"] = f"{folders[0]}:/usr/local/bin:/usr/bin:/bin"
        mounts = [Mount(m["mountPath"], str(volumes[m["name"]]), not m.get("readOnly"))
                  for m in container.get("volumeMounts", [])]
        sandbox = Sandbox(mounts=mounts, uid=security["runAsUser"], gid=security["runAsGroup"],
                          groups=[security["fsGroup"]], working_dir="/", visible=[str(f) for f in folders])
        argv = expand(container["command"] + container.get("args", []), values)
        done = subprocess.run(sandbox.command(argv), env=values, capture_output=True, text=True,
                              timeout=timeout)
        output.append(f"[{container['name']}] {done.stdout}{done.stderr}".strip())
        if done.returncode != 0:
            return PodRun(False, done.returncode, "\n".join(output))
    return PodRun(True, 0, "\n".join(output))
