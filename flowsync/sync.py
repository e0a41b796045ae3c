"""Apply a folder of flow files to a running Langflow through its REST API, with no restart.

Standard library only: the same file runs in the cluster, in a Job of the stack's own Langflow image
(mounted from a ConfigMap), and by hand through `make sync-flows` (flowsync/__main__.py, which
validates the folder with the program's own checks first).

What it does, in this order, and why:
  1. Authenticate: an API key (LANGFLOW_API_KEY), else the superuser's login (LANGFLOW_SUPERUSER,
     LANGFLOW_SUPERUSER_PASSWORD), else auto-login (Langflow with login off). Credentials come from the
     environment only, never from arguments, and are never printed.
  2. Plan: flows are matched by `endpoint_name` (Langflow 1.6 ignores the id of a flow created through the
     API, so the endpoint name is what stays). New ones are created, changed ones updated in place
     (`PATCH /api/v1/flows/{id}`: same id, same endpoint), unchanged ones left alone. Flows the ledger
     says this program put there and that are gone from the folder are deleted; no other flow is
     touched (Langflow's starter flows, flows users made in the UI).
  3. Check: every new or changed flow is first built under a temporary flow that nobody serves (no
     endpoint name, a fresh id), then that flow is deleted. Nothing is switched unless all build.
  4. Apply, then record the ledger (a Langflow global variable holding the endpoint names it manages
     and the revision). If applying fails half-way, what was applied is undone (updated flows get their
     old content back, created ones are deleted), so a half-applied set is never left serving.

Exit status: 0 when every flow is in place (it prints one line per flow: created, updated, unchanged,
deleted), 1 when the sync failed (Langflow's own message is printed; the flows that were live stay
live), 2 on bad input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

# The global variable in which Langflow itself records which flows the sync manages.
LEDGER_VARIABLE = "LANGFLOW_PULUMI_MANAGED_FLOWS"
# The fields a sync sets through PATCH /api/v1/flows/{id} (Langflow's FlowUpdate), when the file has them.
SYNCED_FIELDS = ("name", "description", "data", "endpoint_name", "locked", "mcp_enabled", "action_name",
                 "action_description", "access_type")
CHECK_SUFFIX = "sync check"
TIMEOUT = 120


class SyncError(Exception):
    """The sync failed; the message says where, with Langflow's own words."""


@dataclass(frozen=True)
class Change:
    action: str  # created, updated, unchanged, deleted
    endpoint: str
    document: Optional[dict] = None  # the desired flow (created, updated, unchanged)
    existing: Optional[dict] = None  # the flow in Langflow (updated, unchanged, deleted)

    def line(self) -> str:
        name = (self.document or self.existing or {}).get("name", "")
        return f"{self.action:<9} {self.endpoint}" + (f" ({name})" if name else "")


@dataclass(frozen=True)
class Ledger:
    """What Langflow holds of the sync's own record: the endpoint names it manages, and the revision."""

    variable_id: Optional[str] = None
    flows: frozenset[str] = frozenset()
    revision: Optional[str] = None


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)

    def of(self, *actions: str) -> list[Change]:
        return [c for c in self.changes if c.action in actions]

    @property
    def changed(self) -> bool:
        return any(c.action != "unchanged" for c in self.changes)


def read_folder(folder: Path) -> dict[str, dict]:
    """The folder's flows by endpoint name, as Langflow selects files (`*.json`)."""
    flows: dict[str, dict] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix == ".json" and p.is_file()):
        document = json.loads(path.read_text(encoding="utf-8"))
        endpoint = document.get("endpoint_name") if isinstance(document, dict) else None
        if not endpoint:
            raise SyncError(f"{path.name}: a synced flow needs an 'endpoint_name' (Langflow's API cannot keep a "
                            "file's id, so the endpoint name is how the flow is found again)")
        if endpoint in flows:
            raise SyncError(f"{path.name}: endpoint_name {endpoint!r} is used by another file too")
        flows[endpoint] = document
    return flows


def synced_fields(document: dict) -> dict:
    return {key: document[key] for key in SYNCED_FIELDS if document.get(key) is not None}


def plan(desired: dict[str, dict], existing: list[dict], managed: set[str]) -> Plan:
    """What to do: `existing` are Langflow's flows, `managed` the endpoint names the ledger holds."""
    by_endpoint = {f["endpoint_name"]: f for f in existing if f.get("endpoint_name")}
    changes = []
    for endpoint, document in sorted(desired.items()):
        current = by_endpoint.get(endpoint)
        if current is None:
            changes.append(Change("created", endpoint, document))
        elif all(current.get(k) == v for k, v in synced_fields(document).items()):
            changes.append(Change("unchanged", endpoint, document, current))
        else:
            changes.append(Change("updated", endpoint, document, current))
    for endpoint in sorted(managed - set(desired)):
        if endpoint in by_endpoint:
            changes.append(Change("deleted", endpoint, existing=by_endpoint[endpoint]))
    return Plan(changes)


class Langflow:
    """Langflow's REST API, authenticated from the environment."""

    def __init__(self, base_url: str, environ: Optional[dict[str, str]] = None):
        self.base_url = base_url.rstrip("/")
        self.headers: dict[str, str] = {}
        self._authenticate(os.environ if environ is None else environ)

    def request(self, method: str, path: str, body: Any = None, *, form: Optional[dict] = None,
                query: Optional[dict] = None, raw: bool = False) -> Any:
        url = self.base_url + path + (("?" + urllib.parse.urlencode(query)) if query else "")
        headers = {**self.headers, "Accept": "application/json", "Accept-Encoding": "gzip"}
        data = None
        if form is not None:
            data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        elif body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                payload, kind = _body(response), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            raise SyncError(f"{method} {path}: HTTP {error.code}: {_detail(_body(error))}") from None
        except (urllib.error.URLError, OSError) as error:
            raise SyncError(f"{method} {path}: Langflow at {self.base_url} did not answer: {error}") from None
        if raw:
            return payload
        if not payload:
            return None  # 204: nothing to read
        # Langflow's UI answers unknown paths with its HTML page and 200: never take that for an answer.
        if "json" not in kind:
            raise SyncError(f"{method} {path}: expected JSON, got {kind or 'no content type'}: is {self.base_url} "
                            "Langflow's API (with its /api/v1 routes)?")
        return json.loads(payload) if payload else None

    def _authenticate(self, environ: dict[str, str]) -> None:
        if environ.get("LANGFLOW_API_KEY"):
            self.headers = {"x-api-key": environ["LANGFLOW_API_KEY"]}
            return
        if environ.get("LANGFLOW_SUPERUSER_PASSWORD"):
            token = self.request("POST", "/api/v1/login", form={
                "username": environ.get("LANGFLOW_SUPERUSER") or "langflow",
                "password": environ["LANGFLOW_SUPERUSER_PASSWORD"]})
        else:
            token = self.request("GET", "/api/v1/auto_login")
        if not isinstance(token, dict) or not token.get("access_token"):
            raise SyncError("Langflow handed out no access token")
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    # --- flows -------------------------------------------------------------------------------

    def flows(self) -> list[dict]:
        listed = self.request("GET", "/api/v1/flows/", query={"get_all": "true", "remove_example_flows": "true"})
        return listed if isinstance(listed, list) else listed.get("items", [])

    def create(self, document: dict) -> dict:
        return self.request("POST", "/api/v1/flows/", synced_fields(document))

    def update(self, flow_id: str, document: dict) -> dict:
        return self.request("PATCH", f"/api/v1/flows/{flow_id}", synced_fields(document))

    def delete(self, flow_id: str) -> None:
        self.request("DELETE", f"/api/v1/flows/{flow_id}")

    def build(self, flow_id: str) -> None:
        """Build (run once) the flow with an empty input; SyncError with the first error Langflow reports."""
        stream = self.request("POST", f"/api/v1/build/{flow_id}/flow", {"inputs": {"input_value": ""}},
                              query={"event_delivery": "direct", "log_builds": "false"}, raw=True)
        ended = False
        for line in stream.decode("utf-8", "replace").splitlines():
            event = json.loads(line) if line.strip().startswith("{") else {}
            kind, data = event.get("event"), event.get("data") or {}
            if kind == "error":
                raise SyncError(_detail(data))
            if kind == "end_vertex" and not (data.get("build_data") or {}).get("valid", True):
                raise SyncError(_detail((data.get("build_data") or {}).get("params") or data))
            ended = ended or kind == "end"
        if not ended:
            raise SyncError(f"the build of flow {flow_id} did not end: {stream[-300:]!r}")

    # --- the ledger --------------------------------------------------------------------------

    def ledger(self) -> Ledger:
        for variable in self.request("GET", "/api/v1/variables/") or []:
            if variable.get("name") == LEDGER_VARIABLE:
                try:
                    recorded = json.loads(variable.get("value") or "{}")
                except ValueError:
                    recorded = {}  # unreadable: manage nothing rather than delete the wrong flows
                return Ledger(variable["id"], frozenset(recorded.get("flows", [])), recorded.get("revision"))
        return Ledger()

    def record(self, ledger: Ledger, flows: frozenset[str], revision: str) -> Ledger:
        value = json.dumps({"flows": sorted(flows), "revision": revision})
        if ledger.variable_id is None:
            created = self.request("POST", "/api/v1/variables/", {"name": LEDGER_VARIABLE, "value": value,
                                                                 "type": "Generic", "default_fields": []})
            return Ledger(created["id"], flows, revision)
        self.request("PATCH", f"/api/v1/variables/{ledger.variable_id}", {"id": ledger.variable_id, "value": value})
        return Ledger(ledger.variable_id, flows, revision)


def _body(response) -> bytes:
    payload = response.read()
    if response.headers.get("Content-Encoding") == "gzip":
        payload = gzip.decompress(payload)
    return payload


def _detail(body: Any) -> str:
    """Langflow's own words from an error body."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")[:500]
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "text"):
            if body.get(key):
                return _detail(body[key]) if isinstance(body[key], (dict, list)) else str(body[key])
    return json.dumps(body)[:500]


def check(langflow: Langflow, changes: list[Change], revision: str) -> None:
    """Build each new or changed flow as a temporary flow nobody serves; raise naming every one that fails."""
    failures = []
    for change in changes:
        document = {**change.document, "name": f"{change.document['name']} [{CHECK_SUFFIX} {revision[:12]}]"}
        document.pop("endpoint_name", None)
        temporary = langflow.create(document)
        try:
            langflow.build(temporary["id"])
        except SyncError as error:
            failures.append(f"{change.endpoint}: {error}")
        finally:
            langflow.delete(temporary["id"])
    if failures:
        raise SyncError("Langflow could not build " + "; ".join(failures) + ". Nothing was switched: the flows "
                        "that were live stay live.")


def apply(langflow: Langflow, current: Plan) -> None:
    """Create, update, delete; on a failure undo what was done, then raise."""
    undo: list[Callable[[], Any]] = []
    try:
        for change in current.of("created"):
            created = langflow.create(change.document)
            undo.append(lambda flow_id=created["id"]: langflow.delete(flow_id))
        for change in current.of("updated"):
            langflow.update(change.existing["id"], change.document)
            undo.append(lambda c=change: langflow.update(c.existing["id"], c.existing))
        for change in current.of("deleted"):
            langflow.delete(change.existing["id"])
    except SyncError as error:
        undone = []
        for step in reversed(undo):
            try:
                step()
            except SyncError as failed:
                undone.append(str(failed))
        raise SyncError(f"{error}. What this sync had applied was undone" +
                        (f", except: {'; '.join(undone)}" if undone else "") + ".") from None


def sync(langflow: Langflow, desired: dict[str, dict], revision: str, out: Callable[[str], None] = print) -> Plan:
    ledger = langflow.ledger()
    current = plan(desired, langflow.flows(), set(ledger.flows))
    check(langflow, current.of("created", "updated"), revision)
    # Recorded before applying: a sync cut short still knows every flow it may have created.
    wanted, applying = frozenset(desired), ledger.flows | frozenset(desired)
    if ledger.variable_id is None or applying != ledger.flows:
        ledger = langflow.record(ledger, applying, ledger.revision or revision)
    apply(langflow, current)
    if ledger.flows != wanted or ledger.revision != revision:
        langflow.record(ledger, wanted, revision)
    for change in current.changes:
        out(change.line())
    out(f"flows revision {revision[:12]}: " + (", ".join(
        f"{len(current.of(a))} {a}" for a in ("created", "updated", "unchanged", "deleted") if current.of(a))
        if current.changed else f"no changes ({len(desired)} flows unchanged)"))
    return current


def wait_ready(base_url: str, seconds: float) -> None:
    """Langflow answers /health_check (a Job may start before a new Langflow pod is ready)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/health_check", timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise SyncError(f"Langflow at {base_url} did not answer /health_check within {seconds:.0f} s")
        time.sleep(2)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="flowsync", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Langflow's base URL, e.g. http://langflow.ns.svc:7860")
    parser.add_argument("--folder", required=True, type=Path, help="the folder of flow files (*.json)")
    parser.add_argument("--revision", required=True, help="the flows revision (a content hash), recorded")
    parser.add_argument("--wait-seconds", type=float, default=0, help="wait this long for /health_check first")
    args = parser.parse_args(argv)
    try:
        desired = read_folder(args.folder)
    except (OSError, ValueError, SyncError) as error:
        print(f"flowsync: {args.folder}: {error}", file=sys.stderr)
        return 2
    try:
        if args.wait_seconds:
            wait_ready(args.url, args.wait_seconds)
        sync(Langflow(args.url), desired, args.revision)
    except SyncError as error:
        print(f"flowsync: FAILED: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
