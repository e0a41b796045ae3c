"""A local Kubernetes control plane for integration tests.

etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok on
127.0.0.1, with fake nodes and stand-ins for the add-ons a real cluster has
(default StorageClass with a provisioner, ingress/load-balancer status, the
platform's CRDs). See README.md in this directory.
"""

from .cluster import BINARIES, ClusterError, LocalCluster
from .kubeapi import ApiError, KubeClient

__all__ = ["BINARIES", "ApiError", "ClusterError", "KubeClient", "LocalCluster"]
