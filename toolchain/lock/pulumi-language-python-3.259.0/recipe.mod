module langflow.local/toolchain/pulumi-language-python

go 1.24

require (
	github.com/pulumi/pulumi/pkg/v3 v3.163.0
	github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 v3.0.0-20250417110128-49fb14839a5a
	github.com/pulumi/pulumi/sdk/v3 v3.163.0
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
