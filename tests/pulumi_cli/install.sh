#!/usr/bin/env bash
# Puts the Pulumi CLI on PATH (/usr/local/bin/pulumi) where none is installed, built from Go modules:
# the machines that run the tests reach the Go module proxy but not Pulumi's download site.
# The module next to this script pins the CLI's version and every dependency's checksum (go.sum);
# pkg/v3 is built the way Pulumi's release does (CGO off, -trimpath, the same tags and ldflags).
# The binary is cached under CACHE_DIR by version, so a second run takes a second.
# Prints how long the build took (cold) or that the cached binary was used (warm).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

CACHE_DIR=${PULUMI_CLI_CACHE_DIR:-/var/cache/django-swarm/pulumi-cli}
BIN_DIR=${PULUMI_CLI_BIN_DIR:-/usr/local/bin}

log() { printf '==> %s\n' "$*" >&2; }

if command -v pulumi >/dev/null 2>&1 && [[ $(command -v pulumi) != "$BIN_DIR/pulumi" ]]; then
  log "Pulumi CLI already installed: $(command -v pulumi) $(pulumi version)"
  exit 0
fi
# Go's own installer puts it here without touching PATH.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH=$PATH:/usr/local/go/bin
fi
if ! command -v go >/dev/null 2>&1; then
  echo "tests/pulumi_cli/install.sh: no pulumi and no go on PATH: install the Pulumi CLI" \
    "(https://www.pulumi.com/docs/install/) or Go 1.26 to build it" >&2
  exit 1
fi

version=$(awk '{ for (i = 1; i < NF; i++) if ($i == "github.com/pulumi/pulumi/pkg/v3") print $(i + 1) }' \
  "$here/go.mod")
[[ -n $version ]] || {
  echo "tests/pulumi_cli/install.sh: go.mod does not require github.com/pulumi/pulumi/pkg/v3" >&2
  exit 1
}
binary=$CACHE_DIR/$version/pulumi

started=$SECONDS
if [[ -x $binary ]]; then
  log "Pulumi CLI $version from the cache ($binary)"
else
  log "Building the Pulumi CLI $version from Go modules (cold: about 4 minutes on 2 cores)"
  install -d "$CACHE_DIR/$version"
  (
    cd "$here"
    CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -tags osusergo,grpcnotrace \
      -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
      -o "$binary.partial" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  )
  # Renamed only once whole: an interrupted build is never taken for a cached one.
  mv -f "$binary.partial" "$binary"
  log "Built the Pulumi CLI $version in $((SECONDS - started)) s (cold)"
fi
install -d "$BIN_DIR"
ln -sfn "$binary" "$BIN_DIR/pulumi"
log "pulumi $("$BIN_DIR/pulumi" version) on PATH as $BIN_DIR/pulumi ($((SECONDS - started)) s)"
