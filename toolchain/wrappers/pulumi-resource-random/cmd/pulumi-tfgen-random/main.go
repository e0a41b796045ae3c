// pulumi-tfgen-random generates schema.json and bridge-metadata.json for
// pulumi-resource-random (run: pulumi-tfgen-random schema --out <dir>).
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	"langflow.local/toolchain/pulumi-resource-random/provider"
)

// Version is set with -ldflags "-X main.Version=<semver>".
var Version = "0.0.0-dev"

func main() {
	pftfgen.Main("random", provider.Info(Version, []byte("{}")))
}
