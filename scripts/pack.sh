#!/usr/bin/env bash
# Build a self-contained release tarball for offline installation (`install.sh --from`):
# compiled app, the Node runtime, production node_modules for the target architecture,
# units and udev rules, the installer itself, and the face models when they are installed.
#
#   scripts/pack.sh [--out DIR] [--arch x64|arm64] [--node-modules DIR] [--no-models]
#                   [--no-typecheck] [--version V]
#
# The release carries its own Node (scripts/node-runtime.sh: the pinned Node 24 LTS
# binary for the target arch from the npm registry), so a box needs no Node from anywhere;
# the unit and the `estate-edge` command run <release>/node/bin/node.
# Native addons (better-sqlite3, epoll, @serialport/bindings-cpp, onnxruntime-node, sharp)
# must match the box's CPU and that runtime's ABI:
#   - host arch (default): node_modules of this checkout (`npm ci` under the same runtime,
#     as .ci/run does);
#   - another arch (--arch arm64 on x86-64): a production tree is installed for it
#     (npm ci --omit=dev --cpu/--os: sharp's @img/sharp-linux-arm64, the arm64 binaries
#     onnxruntime-node and @serialport/bindings-cpp ship), and the addons without an arm64
#     binary (better-sqlite3, epoll) are cross-compiled with Debian's
#     g++-aarch64-linux-gnu against the arm64 runtime's headers; the tree is cached in
#     .runtime/ per package-lock and runtime version;
#   - --node-modules DIR: a tree installed elsewhere (e.g. on a Pi).
# Every ELF file in the pack is checked for the target machine, and every addon is loaded
# by the shipped runtime (directly, or under qemu-aarch64-static when it is installed, see
# scripts/lib/qemu-prefix.sh):
# a mismatch fails the pack rather than producing a box that cannot start.
set -euo pipefail

usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
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
  x64) ELF_MACHINE=62; GNU_TRIPLE=x86_64-linux-gnu ;;
  arm64) ELF_MACHINE=183; GNU_TRIPLE=aarch64-linux-gnu ;;
  *) die "unsupported arch $ARCH (x64 or arm64)" ;;
esac
RUNTIME="$(bash "$REPO/scripts/node-runtime.sh" --arch "$ARCH")" || die "no Node runtime for linux-$ARCH"
RUNTIME_VERSION="$(bash "$REPO/scripts/node-runtime.sh" --version)"
# How to run the shipped runtime on this machine: natively, or under qemu-user.
RUN_TARGET=()
EMU_MISSING=""
if [ "$ARCH" != "$HOST_ARCH" ]; then
  if emu="$(bash "$REPO/scripts/lib/qemu-prefix.sh" "$ARCH" 2>&1)"; then read -r -a RUN_TARGET <<<"$emu"; else EMU_MISSING="$emu"; fi
fi
NODE_ABI="$("${RUN_TARGET[@]}" "$RUNTIME/bin/node" -p process.versions.modules 2>/dev/null || echo unknown)"
[ -d "$NODE_MODULES" ] || [ "$ARCH" != "$HOST_ARCH" ] || die "no node_modules at $NODE_MODULES (run: ONNXRUNTIME_NODE_INSTALL=skip npm ci)"

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
# The bundling step also wrote the generated config validator (git-ignored, not committed)
# into the source tree; the copy below ships it beside the compiled code.
[ -f edge/config/validator.generated.cjs ] || die "bundling generated no edge/config/validator.generated.cjs"
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
install -m 0755 scripts/upgrade-boot-check.sh "$STAGE/scripts/"
cp scripts/lib/notify-listener.py "$STAGE/scripts/" 2>/dev/null || true
[ -f docs/deploy.md ] && cp docs/deploy.md "$STAGE/docs/"
[ -f config.example.yaml ] && cp config.example.yaml "$STAGE/"

# A production tree for another arch, built here (see the header), cached per lock file.
cross_tree() {
  local key dir tmp gyp cc pkg
  key="$(sha256sum <package-lock.json | cut -c1-16)"
  dir="$REPO/.runtime/modules-linux-$ARCH-node$RUNTIME_VERSION-$key"
  if [ -f "$dir/.complete" ]; then echo "pack: reusing the linux-$ARCH tree $dir" >&2; echo "$dir/node_modules"; return; fi
  cc="$GNU_TRIPLE-gcc"
  command -v "$cc" >/dev/null && command -v "$GNU_TRIPLE-g++" >/dev/null || die "cross compilers $GNU_TRIPLE-gcc/g++ not found (Debian packages gcc-$GNU_TRIPLE g++-$GNU_TRIPLE)"
  gyp="$REPO/node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || die "node-gyp not found (run npm ci in this checkout)"
  tmp="$dir.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  cp package.json package-lock.json "$tmp/"
  echo "pack: installing the production tree for linux-$ARCH (npm ci --omit=dev --cpu=$ARCH)" >&2
  (cd "$tmp" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --ignore-scripts --cpu="$ARCH" --os=linux --libc=glibc --no-audit --no-fund >&2) || die "npm ci for linux-$ARCH failed"
  # Addons without a binary for the target: compile them with the cross compilers
  # against the target runtime's headers (node-gyp --nodedir: nothing is downloaded).
  for pkg in better-sqlite3 epoll; do
    [ -f "$tmp/node_modules/$pkg/binding.gyp" ] || continue
    echo "pack: cross-compiling $pkg for linux-$ARCH" >&2
    # npm_config_* too: run under npm (npm exec, npm run), a nodedir from ~/.npmrc arrives
    # in the environment and node-gyp prefers it to --nodedir.
    (cd "$tmp/node_modules/$pkg" && CC="$cc" CXX="$GNU_TRIPLE-g++" LINK="$GNU_TRIPLE-g++" AR="$GNU_TRIPLE-ar" \
      npm_config_nodedir="$RUNTIME" npm_config_arch="$ARCH" npm_config_target_arch="$ARCH" \
      node "$gyp" rebuild --release --arch="$ARCH" --nodedir="$RUNTIME" -j 2 >"$tmp/$pkg.build.log" 2>&1) ||
      { tail -30 "$tmp/$pkg.build.log" >&2; die "cross-compiling $pkg failed"; }
    rm -rf "$tmp/node_modules/$pkg/build/Release/obj.target" "$tmp/node_modules/$pkg/build/Release/.deps" "$tmp/node_modules/$pkg/build/deps"
  done
  touch "$tmp/.complete"
  rm -rf "$dir"; mv "$tmp" "$dir"
  echo "$dir/node_modules"
}
if [ "$ARCH" != "$HOST_ARCH" ] && [ "$NODE_MODULES" = "$REPO/node_modules" ]; then
  NODE_MODULES="$(cross_tree)"
fi

echo "pack: Node $RUNTIME_VERSION runtime for linux-$ARCH"
install -D -m 0755 "$RUNTIME/bin/node" "$STAGE/node/bin/node"
install -D -m 0644 "$RUNTIME/LICENSE" "$STAGE/node/LICENSE"

echo "pack: production node_modules for linux-$ARCH"
# The production dependency tree as npm resolved it (no dev packages).
# Listed in the tree's own project when it has one (a tree for another arch holds that
# arch's optional packages, e.g. @img/sharp-linux-arm64), else in this checkout.
TREE_ROOT="$(cd "$NODE_MODULES/.." && pwd)"
[ -f "$TREE_ROOT/package.json" ] || TREE_ROOT="$REPO"
# Packages npm marks extraneous (left in node_modules by an older lock, e.g. a dependency
# since removed from package.json) are not part of the release.
(cd "$TREE_ROOT" && npm ls --omit=dev --all --parseable --long 2>/dev/null) | grep -v ':EXTRANEOUS' | cut -d: -f1 | sed -n "s|^$TREE_ROOT/node_modules/||p" | sort -u >"$STAGE_ROOT/deps"
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
# The boxes run glibc (Debian, Raspberry Pi OS): musl variants are dead weight.
find "$STAGE/node_modules" -path '*/prebuilds/*' -name '*musl*.node' -delete
# node-gyp's intermediate files (objects, dependency lists, the SQLite sources) are build
# leftovers, and better-sqlite3's test extension is not needed: only the addons stay.
find "$STAGE/node_modules" -type d -path '*/build/*' \( -name obj.target -o -name .deps -o -name obj -o -path '*/build/deps' \) -prune -exec rm -rf {} +
find "$STAGE/node_modules" -path '*/build/*' -type f \( -name '*.mk' -o -name Makefile -o -name '*.gypi' -o -name '*.a' -o -name '*.o' \) -delete
rm -f "$STAGE/node_modules/better-sqlite3/build/Release/test_extension.node"

echo "pack: checking every ELF file is linux-$ARCH"
bad=""
nelf=0
while IFS= read -r -d '' f; do
  magic="$(od -An -c -N4 "$f" | tr -d ' ')"
  case "$f" in *.node) ;; *) [ "$magic" = "177ELF" ] || continue ;; esac
  machine="$(od -An -t u2 -j 18 -N 2 "$f" | tr -d ' ')"
  nelf=$((nelf + 1))
  if [ "$magic" != "177ELF" ] || [ "$machine" != "$ELF_MACHINE" ]; then bad="$bad ${f#"$STAGE/"}(machine=$machine)"; fi
done < <(find "$STAGE" -type f \( -name '*.node' -o -name '*.so*' -o -perm -u+x -o -path '*/bin/*' \) -print0)
[ -z "$bad" ] || die "files not built for linux-$ARCH:$bad"
echo "pack: $nelf ELF files, all linux-$ARCH"
# Every addon must load in the runtime the release ships (ABI, libc, shared libraries).
if [ "$ARCH" = "$HOST_ARCH" ] || [ ${#RUN_TARGET[@]} -gt 0 ]; then
  echo "pack: loading every addon with the shipped runtime${RUN_TARGET[*]:+ (under ${RUN_TARGET[0]})}"
  # One process per addon: each is loaded (and initialised) as the app would, alone.
  nload=0
  while IFS= read -r -d '' f; do
    err="$("${RUN_TARGET[@]}" "$STAGE/node/bin/node" -e 'process.dlopen({ exports: {} }, process.argv[1])' "$f" 2>&1)" ||
      die "${f#"$STAGE/"} does not load in the shipped Node $RUNTIME_VERSION ($ARCH): $(echo "$err" | head -3)"
    nload=$((nload + 1))
  done < <(find "$STAGE" -name '*.node' -type f -print0)
  echo "pack: $nload addons load in the shipped runtime"
else
  echo "pack: warning: cannot run linux-$ARCH code here ($EMU_MISSING): addons checked by ELF header only"
fi

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
  "node": "$RUNTIME_VERSION",
  "nodeAbi": "$NODE_ABI",
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
