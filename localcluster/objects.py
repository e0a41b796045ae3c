"""Objects the local cluster creates at start-up to stand in for a real
platform: fake nodes, a default StorageClass and IngressClass, and the CRDs
the platform's components provide."""

from __future__ import annotations

PROVISIONER = "localcluster.invalid/hostpath"
STORAGE_CLASS = "standard"
INGRESS_CLASS = "nginx"
NODE_ANNOTATION = "kwok.x-k8s.io/node"
# kwok hands out pod IPs counting up from this address (so not the ".0").
POD_CIDR = "10.244.0.1/16"
NODE_IP_PREFIX = "10.240.0"


def fake_node(index: int, kube_version: str) -> dict:
    """A Node object managed by kwok (selected by annotation)."""
    name = f"kwok-node-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"local-{index}",
            },
        },
        # No spec.podCIDR: kwok would hand out the network address of a
        # canonical CIDR first; it allocates from --cidr (POD_CIDR) instead.
        "spec": {},
        "status": {
            # kwok keeps addresses that are already set (else it uses --node-ip).
            "addresses": [{"type": "InternalIP", "address": f"{NODE_IP_PREFIX}.{index + 10}"},
                          {"type": "Hostname", "address": name}],
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110",
                            "ephemeral-storage": "1Ti"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110",
                         "ephemeral-storage": "1Ti"},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": kube_version,
                "kubeProxyVersion": kube_version,
                "containerRuntimeVersion": "kwok",
                "osImage": "kwok",
                "kernelVersion": "kwok",
                "bootID": "", "machineID": "", "systemUUID": "",
            },
        },
    }


def storage_class() -> dict:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
        "allowVolumeExpansion": True,
    }


def ingress_class() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": INGRESS_CLASS,
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
        },
        "spec": {"controller": "k8s.io/ingress-nginx"},
    }


# Dex (storage type "kubernetes") registers these CRDs itself when it starts
# (dexidp/dex, storage/kubernetes/types.go, customResourceDefinitions for
# apiextensions.k8s.io/v1): group dex.coreos.com, one served+storage version
# v1, namespaced, and a schema that is just an object preserving unknown
# fields -- Dex keeps its fields at the top level, with no spec/status.
# Defined identically here, so objects created before Dex runs are the same
# as the ones Dex would see, and Dex's own create gets AlreadyExists.
_DEX_KINDS = [
    # (plural, singular, kind)
    ("authcodes", "authcode", "AuthCode"),
    ("authrequests", "authrequest", "AuthRequest"),
    ("oauth2clients", "oauth2client", "OAuth2Client"),
    ("signingkeies", "signingkey", "SigningKey"),  # sic: Dex's own plural
    ("refreshtokens", "refreshtoken", "RefreshToken"),
    ("passwords", "password", "Password"),
    ("offlinesessionses", "offlinesessions", "OfflineSessions"),  # sic
    ("connectors", "connector", "Connector"),
    ("devicerequests", "devicerequest", "DeviceRequest"),
    ("devicetokens", "devicetoken", "DeviceToken"),
]
DEX_GROUP = "dex.coreos.com"


def dex_crds() -> list[dict]:
    crds = []
    for plural, singular, kind in _DEX_KINDS:
        crds.append({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{DEX_GROUP}"},
            "spec": {
                "group": DEX_GROUP,
                "names": {"plural": plural, "singular": singular, "kind": kind},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                    }},
                }],
            },
        })
    return crds


def platform_crds() -> list[dict]:
    """All CRDs the stand-in platform provides."""
    return dex_crds()


# The platform's own namespace, where its Dex keeps OAuth2Client objects.
PLATFORM_NAMESPACE = "cpaas-system"


def platform_namespace() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PLATFORM_NAMESPACE}}
