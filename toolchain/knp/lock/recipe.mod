module langflow.local/toolchain/kube-network-policies

go 1.24

require sigs.k8s.io/kube-network-policies v0.8.0

replace sigs.k8s.io/kube-network-policies => ./src
