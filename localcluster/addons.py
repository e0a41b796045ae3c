"""Controller loops standing in for a real cluster's add-ons.

* a volume provisioner for StorageClasses whose provisioner is ours: it
  creates a hostPath PersistentVolume (pre-bound through claimRef) for every
  pending claim, deletes released volumes whose reclaim policy is Delete, and
  grows volumes when a claim asks for more;
* a load-balancer / ingress-controller stand-in: Services of type
  LoadBalancer and Ingresses get a status address.

Everything runs in one thread polling the API server (they are tiny lists on
a test cluster), using the admin client certificate.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from decimal import Decimal
from pathlib import Path

from .kubeapi import ApiError, KubeClient
from .objects import PROVISIONER

PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"

_SUFFIXES = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "m": Decimal("0.001"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(value: str | int | None) -> Decimal:
    """Parse a Kubernetes resource quantity ("1Gi", "500M", "1e3") to a number."""
    if value is None:
        return Decimal(0)
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m or m.group(2) not in _SUFFIXES:
        raise ValueError(f"bad quantity {value!r}")
    return Decimal(m.group(1)) * Decimal(_SUFFIXES[m.group(2)])


class Addons:
    def __init__(self, client: KubeClient, volume_dir: Path, logger: logging.Logger,
                 address: str = "127.0.0.1", interval: float = 0.5, node: str | None = None):
        self.client = client
        # With a real node, volumes are `local` PVs on it: the kubelet applies fsGroup to those
        # (it leaves hostPath volumes as they are), as a local-path provisioner's would get.
        self.node = node
        self.volume_dir = Path(volume_dir)
        self.log = logger
        self.address = address
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_error = ""

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self.volume_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="localcluster-addons",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        self.log.info("add-on controllers started")
        while not self._stop.is_set():
            try:
                self.reconcile()
                self._last_error = ""
            except Exception as exc:  # keep going: the API may be restarting
                msg = f"{type(exc).__name__}: {exc}"
                if msg != self._last_error:  # don't flood the log
                    self.log.warning("reconcile failed: %s", msg)
                    self._last_error = msg
            self._stop.wait(self.interval)
        self.client.close()
        self.log.info("add-on controllers stopped")

    def reconcile(self) -> None:
        self.reconcile_volumes()
        self.reconcile_load_balancers()
        self.reconcile_ingresses()

    # -- volumes -------------------------------------------------------------
    def _our_classes(self) -> dict[str, dict]:
        classes = self.client.items("/apis/storage.k8s.io/v1/storageclasses")
        return {c["metadata"]["name"]: c for c in classes if c.get("provisioner") == PROVISIONER}

    def reconcile_volumes(self) -> None:
        classes = self._our_classes()
        pvs = self.client.items("/api/v1/persistentvolumes")
        by_name = {pv["metadata"]["name"]: pv for pv in pvs}
        for pvc in self.client.items("/api/v1/persistentvolumeclaims"):
            meta, spec = pvc["metadata"], pvc.get("spec", {})
            cls = spec.get("storageClassName")
            if cls not in classes or meta.get("deletionTimestamp"):
                continue
            phase = pvc.get("status", {}).get("phase")
            if phase == "Pending" and not spec.get("volumeName"):
                self._provision(pvc, classes[cls], by_name)
            elif phase == "Bound":
                self._maybe_expand(pvc, by_name.get(spec.get("volumeName", "")))
        for pv in pvs:
            self._maybe_delete(pv)

    def _provision(self, pvc: dict, sc: dict, existing: dict) -> None:
        meta, spec = pvc["metadata"], pvc.get("spec", {})
        annotations = meta.get("annotations") or {}
        node = annotations.get(SELECTED_NODE)
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not node:
            return  # like a real provisioner: wait for the scheduler's pick
        name = f"pvc-{meta['uid']}"
        if name in existing:
            return
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
        path = self.volume_dir / name
        path.mkdir(parents=True, exist_ok=True)
        if self.node:
            path.chmod(0o777)  # as rancher's local-path provisioner makes them: any pod user may write
            node = self.node
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {PROVISIONED_BY: PROVISIONER},
                "labels": {"localcluster/claim-namespace": meta["namespace"]},
            },
            "spec": {
                "capacity": {"storage": size},
                "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                "volumeMode": spec.get("volumeMode") or "Filesystem",
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
                "storageClassName": sc["metadata"]["name"],
                "mountOptions": sc.get("mountOptions") or None,
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                **({"local": {"path": str(path)}} if self.node else
                   {"hostPath": {"path": str(path), "type": "DirectoryOrCreate"}}),
            },
        }
        if pv["spec"]["mountOptions"] is None:
            del pv["spec"]["mountOptions"]
        if node:
            pv["spec"]["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{
                "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                      "values": [node]}]}]}}
        try:
            self.client.create("/api/v1/persistentvolumes", pv)
            self.log.info("provisioned %s for claim %s/%s (%s)", name, meta["namespace"],
                          meta["name"], size)
        except ApiError as err:
            if not err.conflict:
                raise

    def _maybe_expand(self, pvc: dict, pv: dict | None) -> None:
        if not pv or (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) != PROVISIONER:
            return
        want = ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage")
        have = (pv["spec"].get("capacity") or {}).get("storage")
        if want and have and parse_quantity(want) > parse_quantity(have):
            self.client.merge_patch(f"/api/v1/persistentvolumes/{pv['metadata']['name']}",
                                    {"spec": {"capacity": {"storage": want}}})
            self.log.info("expanded %s to %s", pv["metadata"]["name"], want)
            have = want
        status_cap = (pvc.get("status", {}).get("capacity") or {}).get("storage")
        if have and status_cap and parse_quantity(status_cap) < parse_quantity(have):
            ns, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
            self.client.merge_patch(
                f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}/status",
                {"status": {"capacity": {"storage": have}, "conditions": None,
                            "allocatedResources": None, "allocatedResourceStatuses": None}})

    def _maybe_delete(self, pv: dict) -> None:
        meta, spec = pv["metadata"], pv.get("spec", {})
        if (meta.get("annotations") or {}).get(PROVISIONED_BY) != PROVISIONER:
            return
        if pv.get("status", {}).get("phase") != "Released":
            return
        if spec.get("persistentVolumeReclaimPolicy", "Delete") != "Delete":
            return  # Retain: leave it, like a real cluster
        self.client.delete(f"/api/v1/persistentvolumes/{meta['name']}")
        path = Path((spec.get("hostPath") or spec.get("local") or {}).get("path", ""))
        if path.is_absolute() and self.volume_dir in path.parents:
            shutil.rmtree(path, ignore_errors=True)
        self.log.info("deleted released volume %s", meta["name"])

    # -- load balancers and ingresses -----------------------------------------
    def _status_address(self) -> list[dict]:
        return [{"ip": self.address}]

    def reconcile_load_balancers(self) -> None:
        for svc in self.client.items("/api/v1/services"):
            if svc.get("spec", {}).get("type") != "LoadBalancer":
                continue
            if (svc.get("status", {}).get("loadBalancer") or {}).get("ingress"):
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            self.client.merge_patch(f"/api/v1/namespaces/{ns}/services/{name}/status",
                                    {"status": {"loadBalancer": {"ingress": self._status_address()}}})
            self.log.info("service %s/%s: load balancer address %s", ns, name, self.address)

    def reconcile_ingresses(self) -> None:
        for ing in self.client.items("/apis/networking.k8s.io/v1/ingresses"):
            if (ing.get("status", {}).get("loadBalancer") or {}).get("ingress"):
                continue
            ns, name = ing["metadata"]["namespace"], ing["metadata"]["name"]
            self.client.merge_patch(
                f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}/status",
                {"status": {"loadBalancer": {"ingress": self._status_address()}}})
            self.log.info("ingress %s/%s: address %s", ns, name, self.address)

