// pulumi-resource-random serves the bridged Terraform random provider to the
// Pulumi engine. schema.json and bridge-metadata.json are generated at build
// time by pulumi-tfgen-random (see toolchain/build.sh).
package main

import (
	"context"
	_ "embed"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"langflow.local/toolchain/pulumi-resource-random/provider"
)

// Version is set with -ldflags "-X main.Version=<semver>".
var Version = "0.0.0-dev"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() {
	ctx := context.Background()
	pftfbridge.Main(ctx, "random", provider.Info(Version, metadata),
		pftfbridge.ProviderMetadata{PackageSchema: schema})
}
