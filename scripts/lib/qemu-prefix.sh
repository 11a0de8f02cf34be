#!/usr/bin/env bash
# How to run linux-arm64 code on an x86-64 machine (checks and tests only; boxes run it
# natively): Debian's qemu-user-static, no binfmt registration needed.
#
#   scripts/lib/qemu-prefix.sh arm64   → prints the command prefix, e.g.
#                                         qemu-aarch64-static -L <repo>/.runtime/qemu-arm64-root
#
# The -L root holds the arm64 C libraries (libc6-arm64-cross, libstdc++6-arm64-cross) and
# an arm64 /proc/cpuinfo (a Raspberry Pi 4's Cortex-A72 cores): qemu-user passes the host's
# x86 /proc/cpuinfo through, and onnxruntime's CPU detection (cpuinfo) dereferences NULL
# on it at load. qemu looks a path up under -L first, so the emulated process reads this
# file instead; every other path (/sys, /tmp, host binaries it spawns) is the host's.
set -euo pipefail
die() { echo "qemu-prefix: $*" >&2; exit 1; }
ARCH="${1:-arm64}"
case "$ARCH" in arm64) QEMU=qemu-aarch64-static; TRIPLE=aarch64-linux-gnu ;; *) die "only arm64 is emulated (got $ARCH)" ;; esac
command -v "$QEMU" >/dev/null || die "$QEMU not found (Debian package qemu-user-static)"
[ -e "/usr/$TRIPLE/lib/ld-linux-aarch64.so.1" ] || die "/usr/$TRIPLE/lib has no arm64 C library (Debian packages libc6-arm64-cross libstdc++6-arm64-cross)"
[ -e "/usr/$TRIPLE/lib/libstdc++.so.6" ] || die "no arm64 libstdc++ (Debian package libstdc++6-arm64-cross)"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
ROOT="$REPO/.runtime/qemu-$ARCH-root"
if [ ! -f "$ROOT/proc/cpuinfo" ]; then
  mkdir -p "$ROOT.tmp/proc"
  ln -sfn "/usr/$TRIPLE/lib" "$ROOT.tmp/lib"
  for i in $(seq 0 $(( $(nproc) - 1 ))); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
  done >"$ROOT.tmp/proc/cpuinfo"
  rm -rf "$ROOT"; mv "$ROOT.tmp" "$ROOT"
fi
echo "$QEMU -L $ROOT"
