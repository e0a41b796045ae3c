// Package provider describes how the Terraform "random" provider is exposed
// to Pulumi (package "random", module "index", tokens random:index/randomX:RandomX),
// matching the names used by the pulumi-random SDKs.
package provider

import (
	"context"
	"fmt"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// Info builds the bridge configuration. metadata is the bridge-metadata.json
// produced by pulumi-tfgen-random ("{}" while generating it).
func Info(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(shim.NewProvider()),
		Name:         "random",
		Version:      version,
		Description:  "Randomness for Pulumi programs (Terraform random provider, bridged).",
		License:      "Apache-2.0",
		Repository:   "https://github.com/pulumi/pulumi-random",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes has no "id" attribute; use its base64 value.
			"random_bytes": {ComputeID: idFrom("base64")},
		},
		EnableAccurateBridgePreview: true,
	}
	// random_password -> random:index/randomPassword:RandomPassword, etc.
	standard := tokens.MakeStandard("random")
	info.MustComputeTokens(tokens.SingleModule("random_", "index",
		func(module, name string) (string, error) { return standard(module, "Random"+name) }))
	return info
}

func idFrom(key resource.PropertyKey) tfbridge.ComputeID {
	return func(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
		v, ok := state[key]
		if !ok {
			return "", fmt.Errorf("state has no %q to derive the resource ID from", key)
		}
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsString() {
			return "", fmt.Errorf("state property %q is not a string", key)
		}
		return resource.ID(v.StringValue()), nil
	}
}
