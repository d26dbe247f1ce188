//go:build tools

// The Pulumi CLI's main package, required here so that `go mod tidy` keeps go.sum complete for
// `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` (see install.sh).
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
