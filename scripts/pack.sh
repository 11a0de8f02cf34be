#!/usr/bin/env bash
# Build a self-contained release tarball for offline installation (`install.sh --from`):
# compiled app, production node_modules for the target architecture, units and udev
# rules, the installer itself, and the face models when they are installed.
#
#   scripts/pack.sh [--out DIR] [--arch x64|arm64] [--node-modules DIR] [--no-models]
#                   [--no-typecheck] [--version V]
#
# Native addons (better-sqlite3, @serialport/bindings-cpp, onnxruntime-node, sharp) must
# match the box's CPU. The pack takes node_modules from this checkout, so by default it
# targets this machine's arch. For a Raspberry Pi (arm64) build the pack ON a Pi (or any
# arm64 Linux with Node 20+: `ONNXRUNTIME_NODE_INSTALL=skip npm ci && scripts/pack.sh`),
# or pass `--arch arm64 --node-modules DIR` with a tree installed on arm64. Every *.node
# file in the pack is checked (ELF machine) against the target and the pack fails on a
# mismatch rather than producing a box that cannot start.
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "pack: $*" >&2; exit 1; }

REPO="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$REPO/dist-pack"
ARCH=""
NODE_MODULES="$REPO/node_modules"
MODELS=1
TYPECHECK=1
VERSION=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --node-modules) NODE_MODULES="$2"; shift 2 ;;
    --no-models) MODELS=0; shift ;;
    --no-typecheck) TYPECHECK=0; shift ;;
    --version) VERSION="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

command -v node >/dev/null || die "node not found"
HOST_ARCH="$(node -p process.arch)"
ARCH="${ARCH:-$HOST_ARCH}"
case "$ARCH" in
  x64) ELF_MACHINE=62 ;;
  arm64) ELF_MACHINE=183 ;;
  *) die "unsupported arch $ARCH (x64 or arm64)" ;;
esac
if [ "$ARCH" != "$HOST_ARCH" ] && [ "$NODE_MODULES" = "$REPO/node_modules" ]; then
  die "target $ARCH differs from this machine ($HOST_ARCH): pass --node-modules DIR installed on $ARCH (see the header of this script)"
fi
[ -d "$NODE_MODULES" ] || die "no node_modules at $NODE_MODULES (run: ONNXRUNTIME_NODE_INSTALL=skip npm ci)"

cd "$REPO"
VERSION="${VERSION:-$(node -p "require('./package.json').version")}"
COMMIT="$(git rev-parse --short=10 HEAD 2>/dev/null || echo nogit)"
RELEASE="$VERSION-$COMMIT"
NAME="estate-edge-$RELEASE"
STAGE_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/ee-pack.XXXXXX")"
trap 'rm -rf "$STAGE_ROOT"' EXIT
STAGE="$STAGE_ROOT/$NAME"
mkdir -p "$STAGE" "$OUT"

echo "pack: compiling TypeScript ($([ $TYPECHECK = 1 ] && echo with || echo without) type check)"
TSC_ARGS=(-p . --outDir "$STAGE/dist" --sourceMap false)
[ $TYPECHECK = 1 ] || TSC_ARGS+=(--noCheck)
node node_modules/typescript/bin/tsc "${TSC_ARGS[@]}" || die "TypeScript build failed: a release must compile"
# Tests and dev scripts do not belong on a box.
rm -rf "$STAGE/dist/test" "$STAGE/dist/scripts"
[ -f "$STAGE/dist/edge/main.js" ] || die "build produced no dist/edge/main.js"
# The production bundle the unit runs (scripts/bundle.ts: a fraction of the memory of
# ~300 separate ES modules). The per-file tsc output stays for install.sh's config check.
echo "pack: bundling"
node --import tsx scripts/bundle.ts "$STAGE/dist/bundle/edge" || die "bundling failed"
[ -f "$STAGE/dist/bundle/edge/main.js" ] || die "bundle produced no dist/bundle/edge/main.js"
# Files tsc does not emit (console web assets, meter profiles) go beside the compiled
# code, where the modules look for them relative to their own location.
find edge drivers -type f ! -name '*.ts' ! -name '*.c' -print0 | while IFS= read -r -d '' f; do
  install -D -m 0644 "$f" "$STAGE/dist/$f"
done

cp package.json package-lock.json "$STAGE/"
# The app reads package.json from dist/.. for its version: rewrite it when overridden.
node -e "const f='$STAGE/package.json';const p=require(f);p.version='$VERSION';require('fs').writeFileSync(f, JSON.stringify(p,null,2)+'\n')"
mkdir -p "$STAGE/scripts" "$STAGE/docs"
cp -r systemd "$STAGE/"
cp scripts/install.sh "$STAGE/scripts/"
cp scripts/lib/notify-listener.py "$STAGE/scripts/" 2>/dev/null || true
[ -f docs/deploy.md ] && cp docs/deploy.md "$STAGE/docs/"
[ -f config.example.yaml ] && cp config.example.yaml "$STAGE/"

echo "pack: production node_modules for linux-$ARCH"
# The production dependency tree as npm resolved it (no dev packages).
(cd "$REPO" && npm ls --omit=dev --all --parseable 2>/dev/null) | sed -n "s|^$REPO/node_modules/||p" | sort -u >"$STAGE_ROOT/deps"
[ -s "$STAGE_ROOT/deps" ] || die "npm ls listed no production dependency"
mkdir -p "$STAGE/node_modules"
while IFS= read -r dep; do
  # Nested copies (a/node_modules/b) come with their parent.
  case "$dep" in */node_modules/*) continue ;; esac
  [ -e "$NODE_MODULES/$dep" ] || die "missing $NODE_MODULES/$dep (is the tree complete for $ARCH?)"
  mkdir -p "$STAGE/node_modules/$(dirname "$dep")"
  cp -a "$NODE_MODULES/$dep" "$STAGE/node_modules/$dep"
done <"$STAGE_ROOT/deps"
# .bin links point into dev tools; the box needs none.
rm -rf "$STAGE/node_modules/.bin"

# Drop binaries of other platforms: onnxruntime-node ships every OS/arch (~300 MB).
for d in "$STAGE"/node_modules/onnxruntime-node/bin/napi-v*; do
  [ -d "$d" ] || continue
  find "$d" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +
  find "$d/linux" -mindepth 1 -maxdepth 1 ! -name "$ARCH" -exec rm -rf {} + 2>/dev/null || true
done
# Prebuilt addons chosen at run time (node-gyp-build): keep linux-<arch> only.
find "$STAGE/node_modules" -type d -name prebuilds -prune | while IFS= read -r p; do
  find "$p" -mindepth 1 -maxdepth 1 ! -name "linux-$ARCH" -exec rm -rf {} +
done
# better-sqlite3's test extension is not needed.
rm -f "$STAGE/node_modules/better-sqlite3/build/Release/test_extension.node"
# The gateway's own addon (binding.gyp, built by npm ci with the other native addons).
[ -f build/Release/malloc_trim.node ] || die "build/Release/malloc_trim.node missing: run npm ci (it builds binding.gyp)"
install -D -m 0644 build/Release/malloc_trim.node "$STAGE/build/Release/malloc_trim.node"

echo "pack: checking native addons are linux-$ARCH"
bad=""
while IFS= read -r -d '' f; do
  magic="$(od -An -c -N4 "$f" | tr -d ' ')"
  machine="$(od -An -t u2 -j 18 -N 2 "$f" | tr -d ' ')"
  if [ "$magic" != "177ELF" ] || [ "$machine" != "$ELF_MACHINE" ]; then bad="$bad ${f#"$STAGE/"}(machine=$machine)"; fi
done < <(find "$STAGE/node_modules" "$STAGE/build" -name '*.node' -type f -print0)
[ -z "$bad" ] || die "native addons not built for linux-$ARCH:$bad"

if [ $MODELS = 1 ]; then
  mkdir -p "$STAGE/models"
  cp models/manifest.json "$STAGE/models/" 2>/dev/null || true
  n=0
  for m in models/*.onnx; do
    [ -f "$m" ] || continue
    cp "$m" "$STAGE/models/"
    n=$((n + 1))
  done
  echo "pack: $n model file(s) included"
else
  mkdir -p "$STAGE/models"
  cp models/manifest.json "$STAGE/models/" 2>/dev/null || true
  echo "pack: models left out (--no-models)"
fi

cat >"$STAGE/RELEASE.json" <<EOF
{
  "name": "estate-edge",
  "release": "$RELEASE",
  "version": "$VERSION",
  "commit": "$COMMIT",
  "arch": "$ARCH",
  "platform": "linux",
  "nodeAbi": "$(node -p process.versions.modules)",
  "nodeMin": 20,
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF

TARBALL="$OUT/$NAME-linux-$ARCH.tar.gz"
# PACK_GZIP_LEVEL=1 trades size for speed (tests); 6 is gzip's default.
tar -C "$STAGE_ROOT" -cf - "$NAME" | gzip "-${PACK_GZIP_LEVEL:-6}" >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"
(cd "$OUT" && sha256sum "$(basename "$TARBALL")" >"$(basename "$TARBALL").sha256")
# The installer beside the tarball, so a USB stick with both is all a technician needs.
install -m 0755 scripts/install.sh "$OUT/install.sh"
echo "pack: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
echo "$TARBALL"
