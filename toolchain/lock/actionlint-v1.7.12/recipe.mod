module langflow.local/toolchain/actionlint-v1.7.12

go 1.24

require (
	github.com/rhysd/actionlint v1.7.12
)
