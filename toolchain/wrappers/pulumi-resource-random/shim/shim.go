// Package shim re-exports the Terraform "random" provider constructor.
//
// The upstream constructor lives in an internal package of
// github.com/terraform-providers/terraform-provider-random, so it can only be
// imported from a package whose import path shares that prefix. This one-file
// module (module path .../terraform-provider-random/shim) exists for exactly
// that reason; toolchain/build.sh wires it in with a replace directive.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"

	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns a fresh Terraform Plugin Framework provider for "random".
func NewProvider() provider.Provider { return upstream.New() }
