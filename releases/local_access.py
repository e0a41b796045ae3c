"""After a release on the local cluster's real node: serve Langflow on 127.0.0.1 and say how to sign in.

scripts/stack-env.sh sets LANGFLOW_LOCAL_CLUSTER_DIR when it deploys to the local cluster. Only a real node
runs the pods; on simulated nodes there is nothing to open, and this says nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

DEFAULT_PORT = 7860


def local_node(cluster_dir: Optional[str]) -> bool:
    if not cluster_dir:
        return False
    try:
        state = json.loads((Path(cluster_dir) / "localcluster.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("status") == "running" and state.get("node") == "real"


def forwarded_service(outputs: dict[str, Any]) -> Optional[str]:
    """NAMESPACE/NAME:PORT of Langflow's Service, from the stack's outputs."""
    namespace, name, base_url = outputs.get("namespace"), outputs.get("service_name"), outputs.get("base_url")
    if not (namespace and name and base_url):
        return None
    return f"{namespace}/{name}:{urlsplit(base_url).port or 80}"


def sign_in_line(outputs: dict[str, Any], stack: str) -> str:
    superuser = outputs.get("superuser")
    if not superuser:
        return "Langflow's login is off in this stack (auth.enabled: false): it opens as its superuser."
    return (f"Log in as {superuser['name']}; the password: "
            f"bash scripts/pulumi.sh {stack} stack output superuser --show-secrets")


def announce(outputs: dict[str, Any], stack: str, out: Callable[[str], None] = print) -> int:
    """Ask the local cluster to serve Langflow on 127.0.0.1 (LANGFLOW_LOCAL_PORT, default 7860); say where."""
    cluster_dir = os.environ.get("LANGFLOW_LOCAL_CLUSTER_DIR")
    if not local_node(cluster_dir):
        return 0
    service = forwarded_service(outputs)
    if service is None:
        return 0
    port_text = os.environ.get("LANGFLOW_LOCAL_PORT", str(DEFAULT_PORT))
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        out(f"LANGFLOW_LOCAL_PORT={port_text!r} is not a port number (1 to 65535)")
        return 2
    done = subprocess.run([sys.executable, "-m", "localcluster", "forward", "--dir", cluster_dir,
                           "--service", service, "--listen", port_text],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
    if done.returncode != 0:
        out(done.stderr.strip() + " (LANGFLOW_LOCAL_PORT=<port> picks another)")
        return 1
    out(f"\nLangflow answers on this machine at http://127.0.0.1:{port_text}/ (its Service {service}, "
        "for as long as the local cluster runs). " + sign_in_line(outputs, stack))
    return 0


def report_crashes(namespace: str, out: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> None:
    """After a failed release on the local real node: the last log lines of the stack's crashed containers."""
    cluster_dir = os.environ.get("LANGFLOW_LOCAL_CLUSTER_DIR")
    if not local_node(cluster_dir):
        return
    from localcluster.kubeapi import KubeClient
    from localcluster.node import crash_report
    state = json.loads((Path(cluster_dir) / "localcluster.json").read_text())
    pki = Path(cluster_dir) / "pki"
    client = KubeClient(state["server"], str(pki / "ca.crt"), str(pki / "admin.crt"), str(pki / "admin.key"))
    report = crash_report(client, namespace)
    if report:
        out(f"Containers that failed in namespace {namespace} (their last log lines):\n{report}")
