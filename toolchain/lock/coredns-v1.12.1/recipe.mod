module langflow.local/toolchain/coredns-v1.12.1

go 1.24

require (
	github.com/coredns/coredns v1.12.1
)
