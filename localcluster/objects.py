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


# Cluster DNS for the real node, as kubeadm deploys it: CoreDNS in kube-system behind the Service
# `kube-dns` (the program's NetworkPolicies allow DNS to pods of kube-system).
COREFILE = """\
.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


def coredns_objects(service_ip: str, image: str) -> list[tuple[str, dict]]:
    """(collection path, object) pairs: RBAC, Corefile, Deployment and Service of CoreDNS."""
    ns, name, labels = "kube-system", "coredns", {"k8s-app": "kube-dns"}
    meta = {"name": name, "namespace": ns, "labels": labels}
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    probe = {"periodSeconds": 2, "timeoutSeconds": 2}
    pod = {
        "serviceAccountName": name,
        "priorityClassName": "system-cluster-critical",
        "dnsPolicy": "Default",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": name, "image": image, "imagePullPolicy": "Never",
            "args": ["-conf", "/etc/coredns/Corefile"],
            "ports": [{"name": "dns", "containerPort": 53, "protocol": "UDP"},
                      {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "50m", "memory": "70Mi"}, "limits": {"memory": "170Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, **probe},
            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}, "initialDelaySeconds": 10, **probe},
            # As kubeadm has it: the image's /coredns carries the file capability to bind port 53.
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": True}],
        }],
        "volumes": [{"name": "config", "configMap": {"name": name}}],
    }
    return [
        (f"/api/v1/namespaces/{ns}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                      "metadata": meta}),
        (f"{rbac}/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}),
        (f"{rbac}/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        (f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                                                 "data": {"Corefile": COREFILE}}),
        (f"/apis/apps/v1/namespaces/{ns}/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": pod}}}),
        (f"/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
            "spec": {"clusterIP": service_ip, "selector": labels,
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}]}}),
    ]
