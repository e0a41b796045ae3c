module langflow.local/toolchain/dex-v2.45.1

go 1.24

require (
	github.com/dexidp/dex v0.0.0-20260303133905-11d2eeb52b42
	github.com/dexidp/dex/api/v2 v2.4.0
)
