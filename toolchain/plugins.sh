#!/usr/bin/env bash
# Install the toolchain's providers into a Pulumi home, as links (no copy):
#   bash toolchain/plugins.sh <bin dir> <PULUMI_HOME>
# Pulumi then finds them in its plugin store by the version the program asks for, and with
# PULUMI_IGNORE_AMBIENT_PLUGINS=true it no longer takes them from PATH with a warning per plugin and
# command ("using pulumi-resource-… from $PATH"). The version is the cache entry's (build.sh names it
# pulumi-resource-<name>-<pin>). Idempotent and cheap: run before every Pulumi command.
set -euo pipefail
BIN=${1:?usage: toolchain/plugins.sh <bin dir> <PULUMI_HOME>}
HOME_DIR=${2:?usage: toolchain/plugins.sh <bin dir> <PULUMI_HOME>}
for link in "$BIN"/pulumi-resource-*; do
  [ -e "$link" ] || continue
  program=$(readlink -f "$link")
  entry=$(basename "$(dirname "$program")")   # pulumi-resource-<name>-<version>
  file=$(basename "$link")                    # pulumi-resource-<name>
  version=${entry#"$file"-}
  [ "$version" != "$entry" ] || { echo "toolchain/plugins.sh: $program is not in a $file-<version> entry" >&2; exit 1; }
  dir="$HOME_DIR/plugins/resource-${file#pulumi-resource-}-v$version"
  mkdir -p "$dir"
  [ "$(readlink "$dir/$file" 2>/dev/null)" = "$program" ] || ln -sfn "$program" "$dir/$file"
done
