#!/usr/bin/env bash
# Installs versitygw, the S3 gateway the remote-source tests start on 127.0.0.1, pinned, into
# .tools/bin/ (git-ignored). Go builds it from the module proxy: no release download needed.
# Does nothing when that version is there already.
set -euo pipefail
cd "$(dirname "$0")/.."
version=v1.8.0
bin=.tools/bin/versitygw
if [ -x "$bin" ] && [ "$(cat .tools/versitygw.version 2>/dev/null)" = "$version" ]; then
  exit 0
fi
echo "installing versitygw $version into .tools/bin (go install, ~100 s)"
mkdir -p .tools/bin
GOBIN="$PWD/.tools/bin" CGO_ENABLED=0 go install "github.com/versity/versitygw/cmd/versitygw@$version"
echo "$version" > .tools/versitygw.version
