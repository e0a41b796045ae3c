module langflow.local/toolchain/oauth2-proxy-v7.15.6

go 1.24

require (
	github.com/oauth2-proxy/oauth2-proxy/v7 v7.15.6
)
