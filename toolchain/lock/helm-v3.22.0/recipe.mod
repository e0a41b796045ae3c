module langflow.local/toolchain/helm-v3.22.0

go 1.24

require (
	helm.sh/helm/v3 v3.22.0
)
