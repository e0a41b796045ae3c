"""The stack's Langflow container, exactly as the program renders it, made runnable here.

The pod spec comes from the workload's own decision functions
(`components/langflow_spec.py`). Each env value is resolved the way the
kubelet would: literal values as they are, the credentials Secret's keys to
values of the form the program generates (a Fernet key, a 24-character
password), pod fields to this host's stand-ins. Each mount becomes a host
folder with the writability the pod gives it.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from components import langflow_spec as spec
from settings import StackSettings
from settings.kube import parse_quantity

CREDENTIALS_SECRET = "langflow-credentials"
DATABASE_URL_SECRET = {"name": "langflow-database-url", "key": "url"}
FLOWS_CONFIG_MAP = "langflow-flows"
# Secrets and ConfigMaps the stack only references (LLM keys, CA bundles): their content is not the program's.
PLACEHOLDER = "placeholder-from-make-verify"
# Pod fields, as this host stands in for the pod.
POD_FIELDS = {
    "metadata.name": "langflow-verify", "metadata.uid": "00000000-0000-0000-0000-000000000000",
    "spec.nodeName": "localhost", "spec.serviceAccountName": "default",
    "status.hostIP": "127.0.0.1", "status.hostIPs": "127.0.0.1", "status.podIP": "127.0.0.1",
    "status.podIPs": "127.0.0.1",
}


class RenderError(Exception):
    pass


@dataclass
class Volume:
    path: str  # where the pod mounts it
    name: str
    kind: str  # the volume source: persistentVolumeClaim, emptyDir, configMap, ...
    writable: bool
    # Files the program puts in it (the flows ConfigMap); None: content the program does not know.
    files: Optional[dict[str, str]] = None
    sub_path: Optional[str] = None

    @property
    def persistent(self) -> bool:
        """Survives a pod's replacement (the data volume); an emptyDir does not."""
        return self.kind == "persistentVolumeClaim"


@dataclass
class Container:
    # The container's command; None: the image's own (`langflow run`).
    command: Optional[list[str]]
    env: dict[str, str]
    volumes: list[Volume]
    uid: int
    gid: int
    fs_group: int
    working_dir: str
    port: int
    startup_budget_seconds: int
    memory_limit_bytes: Optional[int]
    notes: list[str] = field(default_factory=list)


def generated_credentials(auth_enabled: bool, ambassador_key: bool = False) -> dict[str, str]:
    """Values of the form the program generates (components/langflow.py): stable within one check.
    `ambassador_key`: Langflow reads the ambassador's key from its environment (spec.ambassador_key_from_env)."""
    alphabet = string.ascii_letters + string.digits
    values = {"LANGFLOW_SECRET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    if auth_enabled:
        values["LANGFLOW_SUPERUSER_PASSWORD"] = "".join(secrets.choice(alphabet) for _ in range(24))
    if ambassador_key:
        values["LANGFLOW_API_KEY"] = "sk-" + "".join(secrets.choice(alphabet) for _ in range(43))
    return values


def render(settings: StackSettings, credentials: dict[str, str], database_url: Optional[str] = None,
           init_job: bool = False) -> Container:
    """The Deployment's Langflow container, or (`init_job`) the init Job's."""
    config = settings.config
    template = dict(credentials_secret=CREDENTIALS_SECRET, flows_config_map=FLOWS_CONFIG_MAP, flows_digest="verify",
                    database=spec.DatabaseLink(DATABASE_URL_SECRET) if config.database.type == "postgresql" else None)
    manifest = spec.init_job_manifest(config, **template) if init_job else spec.deployment_manifest(config, **template)
    pod = manifest["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    notes: list[str] = []
    env = {item["name"]: _env_value(item, config, credentials, database_url, notes) for item in container["env"]}
    volumes_by_name = {v["name"]: v for v in pod["volumes"]}
    flows = {f.file_name: f.text for f in settings.flows}
    volumes = []
    for mount in container["volumeMounts"]:
        source = volumes_by_name[mount["name"]]
        kind = next(k for k in source if k != "name")
        writable = not mount.get("readOnly") and kind in ("persistentVolumeClaim", "emptyDir", "ephemeral") \
            and not (source[kind] or {}).get("readOnly")
        # The flows ConfigMap: the one named here, or (flows synced) the flow sync's, once it synced these flows.
        flows_names = {FLOWS_CONFIG_MAP, spec.flows_config_map_name(config)}
        files = flows if kind == "configMap" and source[kind].get("name") in flows_names else None
        if kind not in ("persistentVolumeClaim", "emptyDir", "ephemeral") and files is None:
            notes.append(f"volume {mount['name']} ({kind}) at {mount['mountPath']} is empty here: its content is not "
                         "the program's")
        volumes.append(Volume(mount["mountPath"], mount["name"], kind, writable, files, mount.get("subPath")))
    # The init Job has no probes: its deadline is the same budget.
    startup = container.get("startupProbe")
    budget = startup["periodSeconds"] * startup["failureThreshold"] if startup else manifest["spec"]["activeDeadlineSeconds"]
    security = pod["securityContext"]
    limit = container["resources"].get("limits", {}).get("memory")
    return Container(
        command=container.get("command"), env=env, volumes=volumes, uid=security["runAsUser"], gid=security["runAsGroup"],
        fs_group=security["fsGroup"], working_dir="/app", port=spec.CONTAINER_PORT,
        startup_budget_seconds=budget,
        memory_limit_bytes=int(parse_quantity(limit)) if limit else None, notes=notes,
    )


def _env_value(item: dict[str, Any], config, credentials: dict[str, str], database_url: Optional[str],
               notes: list[str]) -> str:
    if "value" in item:
        return item["value"]
    source = item["valueFrom"]
    name = item["name"]
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        if ref["name"] == CREDENTIALS_SECRET:
            return credentials[ref["key"]]
        if name == "LANGFLOW_DATABASE_URL":
            if database_url is None:
                raise RenderError(f"database.type {config.database.type}: make verify needs a database; pass "
                                  "--database-url postgresql://... (a scratch database Langflow may migrate)")
            return database_url
        notes.append(f"{name}: Secret {ref['name']} is referenced, not held by the program: a placeholder value here")
        return PLACEHOLDER
    if "configMapKeyRef" in source:
        notes.append(f"{name}: ConfigMap {source['configMapKeyRef']['name']} is referenced: a placeholder value here")
        return PLACEHOLDER
    if "fieldRef" in source:
        path = source["fieldRef"]["fieldPath"]
        if path == "metadata.namespace":
            return config.namespace
        return POD_FIELDS.get(path, "")
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        kind, _, resource = ref["resource"].partition(".")
        value = getattr(config.resources, kind).get(resource)
        divisor = parse_quantity(ref.get("divisor", "1"))
        return str(int(-(-parse_quantity(value) // divisor))) if value else "0"
    raise RenderError(f"{name}: an env source make verify cannot resolve: {sorted(source)}")
