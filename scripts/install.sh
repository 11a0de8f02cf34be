#!/usr/bin/env bash
# Install or upgrade estate-edge on a Raspberry Pi OS Bookworm (arm64) or Debian 12 box.
#
#   sudo scripts/install.sh [--from TARBALL] [options]
#
#   --from TARBALL   install this release (made by scripts/pack.sh; works offline).
#                    Without it, a release is packed from this checkout first.
#   --site ID        estate id for a new starter config (default: unconfigured)
#   --gateway ID     gateway id for a new starter config (default: the host name)
#   --broker URL     MQTT broker for a new starter config (default: uplink disabled)
#   --timeout S      seconds the new version has to report READY (default 120)
#   --settle S       it must then stay up this long (default 10)
#   --keep N         releases kept besides current and previous (default 1)
#   --no-start       install and enable, but do not (re)start the service
#   --fleet-key PUB  the fleet's Ed25519 public key (scripts/sign-release keygen): installed
#                    as /etc/estate-edge/fleet-signing.pub; signed upgrades (gateway.upgrade)
#                    are refused without it. Never the private key.
#   --root DIR       install into DIR instead of / (tests, image building). systemctl and
#                    udevadm are still called through PATH, so a test can stub them.
#   --arch ARCH      with --root: the CPU of the box the root is for (x64 or arm64; image
#                    building on another machine). Default: this machine's.
#
# A release carries its own Node runtime (<release>/node/bin/node, put there by pack.sh):
# the box needs no Node installed. Releases packed before that use $NODE (/usr/bin/node).
#
# Idempotent: running it again upgrades in place. Config (/etc/estate-edge) and data
# (/var/lib/estate-edge) are never overwritten. Each version lives in
# /opt/estate-edge/releases/<version>-<commit>; /opt/estate-edge/current points at the
# running one. When the new version does not report READY within --timeout (or falls
# over within --settle), `current` is switched back to the previous release, which is
# restarted, and the script exits 1.
set -euo pipefail

die() { echo "install: error: $*" >&2; exit 1; }
say() { echo "install: $*"; }

SELF_DIR="$(cd "$(dirname "$0")" && pwd)"
FROM=""
ROOT="/"
SITE="unconfigured"
GATEWAY=""
BROKER=""
TIMEOUT=120
SETTLE=10
KEEP=1
START=1
ARCH=""
FLEET_KEY=""
# Only for releases without their own runtime (packed before it was shipped).
SYSTEM_NODE="${NODE:-/usr/bin/node}"
# The production bundle (scripts/bundle.ts) the unit runs; the same file serves the
# `estate-edge` command.
ENTRY=dist/bundle/edge/main.js
while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM="$2"; shift 2 ;;
    --root) ROOT="$2"; shift 2 ;;
    --site) SITE="$2"; shift 2 ;;
    --gateway) GATEWAY="$2"; shift 2 ;;
    --broker) BROKER="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --settle) SETTLE="$2"; shift 2 ;;
    --keep) KEEP="$2"; shift 2 ;;
    --arch) ARCH="$2"; shift 2 ;;
    --no-start) START=0; shift ;;
    --fleet-key) FLEET_KEY="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
ROOT="$(cd "$ROOT" 2>/dev/null && pwd)" || die "--root: no such directory"
R="${ROOT%/}"   # prefix for every path below ("" for a real install)

APP="$R/opt/estate-edge"
ETC="$R/etc/estate-edge"
DATA="$R/var/lib/estate-edge"
UNIT_DIR="$R/etc/systemd/system"
UNIT="estate-edge.service"

# --- preflight -----------------------------------------------------------------
if [ -z "$R" ] && [ "$(id -u)" != 0 ]; then die "run as root (sudo)"; fi
if [ -r /etc/os-release ]; then
  . /etc/os-release
  case "${ID:-}:${VERSION_CODENAME:-}" in
    debian:bookworm|raspbian:bookworm) ;;
    *) say "warning: tested on Debian 12 and Raspberry Pi OS Bookworm, this is ${PRETTY_NAME:-unknown}" ;;
  esac
fi
case "$(uname -m)" in x86_64) HOST_ARCH=x64 ;; aarch64|arm64) HOST_ARCH=arm64 ;; *) HOST_ARCH="$(uname -m)" ;; esac
if [ -n "$ARCH" ]; then
  [ -n "$R" ] || die "--arch is for --root (building a root for another box); on the box itself its own CPU decides"
  case "$ARCH" in x64|arm64) HOST_ARCH="$ARCH" ;; *) die "--arch: x64 or arm64" ;; esac
fi
if [ -n "$FLEET_KEY" ]; then
  grep -q 'PRIVATE KEY' "$FLEET_KEY" 2>/dev/null && die "--fleet-key $FLEET_KEY is a private key: a box gets the public key only"
  grep -q 'BEGIN PUBLIC KEY' "$FLEET_KEY" 2>/dev/null || die "--fleet-key $FLEET_KEY: not a PEM public key"
fi
for tool in tar systemd-sysusers systemd-tmpfiles; do command -v "$tool" >/dev/null || die "$tool not found"; done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ee-install.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

if [ -z "$FROM" ]; then
  [ -x "$SELF_DIR/pack.sh" ] || die "no --from TARBALL and no scripts/pack.sh beside this script"
  say "no --from: packing this checkout"
  FROM="$("$SELF_DIR/pack.sh" --out "$TMP/pack" | tail -1)"
fi
[ -f "$FROM" ] || die "--from $FROM: no such file"
if [ -f "$FROM.sha256" ]; then
  (cd "$(dirname "$FROM")" && sha256sum -c --quiet "$(basename "$FROM").sha256") || die "$FROM does not match $FROM.sha256 (damaged copy?)"
fi

# --- unpack the release ----------------------------------------------------------
mkdir -p "$APP/releases"
STAGE="$(mktemp -d "$APP/releases/.incoming.XXXXXX")"
tar -C "$STAGE" -xzf "$FROM" || { rm -rf "$STAGE"; die "cannot unpack $FROM"; }
TOP="$(find "$STAGE" -mindepth 1 -maxdepth 1 -type d | head -1)"
[ -n "$TOP" ] && [ -f "$TOP/RELEASE.json" ] && [ -f "$TOP/$ENTRY" ] || { rm -rf "$STAGE"; die "$FROM is not an estate-edge release (no RELEASE.json / $ENTRY)"; }
# RELEASE.json is flat JSON written by pack.sh: read without a Node (the box may have none).
json_field() { tr -d '\n' <"$TOP/RELEASE.json" | sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }
RELEASE="$(json_field release)"
REL_ARCH="$(json_field arch)"
[ "$REL_ARCH" = "$HOST_ARCH" ] || { rm -rf "$STAGE"; die "release $RELEASE is for $REL_ARCH, this box is $HOST_ARCH"; }
case "$RELEASE" in ''|*/*|.*) rm -rf "$STAGE"; die "bad release name '$RELEASE'" ;; esac
TARGET="$APP/releases/$RELEASE"
SUM="$(sha256sum "$FROM" | cut -d' ' -f1)"
if [ -d "$TARGET" ] && [ "$(cat "$TARGET/.tarball-sha256" 2>/dev/null)" = "$SUM" ]; then
  say "release $RELEASE already unpacked"
  rm -rf "$STAGE"
else
  echo "$SUM" >"$TOP/.tarball-sha256"
  # Same name, different content (a rebuilt pack): keep the old copy until the swap.
  [ -d "$TARGET" ] && mv "$TARGET" "$TARGET.replaced.$$"
  mv "$TOP" "$TARGET"
  rm -rf "$STAGE" "$TARGET.replaced.$$"
  say "unpacked release $RELEASE"
fi

PREVIOUS=""
if [ -L "$APP/current" ]; then PREVIOUS="$(basename "$(readlink "$APP/current")")"; fi
[ "$PREVIOUS" = "$RELEASE" ] && PREVIOUS="$( [ -L "$APP/previous" ] && basename "$(readlink "$APP/previous")" || true)"

# --- system files of a release (units, udev, users, dirs, journald) -------------
install_system_files() { # $1 = release dir
  local rel="$1" sd="$1/systemd"
  install -D -m 0644 "$sd/estate-edge.service" "$UNIT_DIR/$UNIT"
  # RestartSteps=/RestartMaxDelaySec= exist from systemd 254 on; 252 (Bookworm) would
  # log "Unknown key" for them, so the growing back-off goes in a drop-in only there.
  local v
  v="$(systemctl --version 2>/dev/null | sed -n 's/^systemd \([0-9]*\).*/\1/p' | head -1)"
  if [ "${v:-0}" -ge 254 ]; then
    install -D -m 0644 "$sd/estate-edge-restart-backoff.conf" "$UNIT_DIR/$UNIT.d/10-restart-backoff.conf"
  else
    rm -f "$UNIT_DIR/$UNIT.d/10-restart-backoff.conf"
  fi
  install -D -m 0644 "$sd/99-estate-edge-rs485.rules" "$R/etc/udev/rules.d/99-estate-edge-rs485.rules"
  install -D -m 0644 "$sd/estate-edge.sysusers" "$R/usr/lib/sysusers.d/estate-edge.conf"
  install -D -m 0644 "$sd/estate-edge.tmpfiles" "$R/usr/lib/tmpfiles.d/estate-edge.conf"
  if ! cmp -s "$sd/journald-estate-edge.conf" "$R/etc/systemd/journald.conf.d/50-estate-edge.conf"; then
    install -D -m 0644 "$sd/journald-estate-edge.conf" "$R/etc/systemd/journald.conf.d/50-estate-edge.conf"
    JOURNALD_CHANGED=1
  fi
  # The `estate-edge` command (doctor, check-config) for technicians, with the release's
  # own runtime (or the system's, for a release that ships none).
  local node=/opt/estate-edge/current/node/bin/node
  [ -x "$rel/node/bin/node" ] || node="$SYSTEM_NODE"
  mkdir -p "$R/usr/local/bin"
  cat >"$R/usr/local/bin/estate-edge.tmp" <<EOF
#!/bin/sh
# Installed by estate-edge's install.sh: runs the current release.
exec $node /opt/estate-edge/current/$ENTRY "\$@"
EOF
  chmod 0755 "$R/usr/local/bin/estate-edge.tmp"
  mv "$R/usr/local/bin/estate-edge.tmp" "$R/usr/local/bin/estate-edge"
}
JOURNALD_CHANGED=0
install_system_files "$TARGET"

# User and groups (gpio is created on plain Debian), then directories with owners.
systemd-sysusers --root="$ROOT" "$R/usr/lib/sysusers.d/estate-edge.conf"
systemd-tmpfiles --root="$ROOT" --create "$R/usr/lib/tmpfiles.d/estate-edge.conf"

# --- starter config (never overwrites) ------------------------------------------
if [ ! -e "$ETC/config.yaml" ]; then
  GATEWAY="${GATEWAY:-$(hostname | tr -c 'A-Za-z0-9_.\n-' '-' | cut -c1-64)}"
  {
    echo "# estate-edge configuration: starter written by install.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo "# Every key, its default and meaning: /opt/estate-edge/current/config.example.yaml"
    echo "# Check a change with: estate-edge check-config; then: systemctl restart estate-edge"
    echo "# Secrets never go in this file: reference them as { env: NAME } (set NAME=... in"
    echo "# /etc/estate-edge/secrets.env, mode 0600) or { file: /etc/estate-edge/NAME }."
    echo "site:"
    echo "  id: $SITE"
    echo "gateway:"
    echo "  id: $GATEWAY"
    echo "  dataDir: ${DATA}"
    echo "uplink:"
    if [ -n "$BROKER" ]; then
      echo "  url: $BROKER"
    else
      echo "  enabled: false   # until the broker is known; records are kept meanwhile"
      echo "  # url: mqtts://broker.example.net:8883"
    fi
    echo "  # username: $SITE-$GATEWAY"
    echo "  # password: { env: ESTATE_EDGE_MQTT_PASSWORD }"
  } >"$ETC/config.yaml.tmp"
  chmod 0660 "$ETC/config.yaml.tmp"
  mv "$ETC/config.yaml.tmp" "$ETC/config.yaml"
  say "wrote a starter config: $ETC/config.yaml (edit site/gateway ids and the broker)"
fi
if [ ! -e "$ETC/secrets.env" ]; then
  printf '# Environment for estate-edge.service (EnvironmentFile=): secrets referenced from\n# config.yaml as { env: NAME }. Mode 0600, root only.\n# ESTATE_EDGE_MQTT_PASSWORD=\n' >"$ETC/secrets.env"
  chmod 0600 "$ETC/secrets.env"
fi
if [ -n "$FLEET_KEY" ]; then
  install -m 0644 "$FLEET_KEY" "$ETC/fleet-signing.pub"
  say "installed the fleet signing key: $ETC/fleet-signing.pub"
fi
# Group of the config files: the service reads them, the console may rewrite config.yaml.
GID="$(awk -F: '$1 == "estate-edge" { print $3 }' "$R/etc/group")"
[ -n "$GID" ] && chgrp "$GID" "$ETC" "$ETC/config.yaml" 2>/dev/null || true

# --- switch, start, wait for READY, roll back if not -----------------------------
switch_to() { # atomic symlink swap
  ln -sfn "releases/$1" "$APP/current.new"
  mv -T "$APP/current.new" "$APP/current"
}

state() { systemctl show -p ActiveState -p SubState "$UNIT" 2>/dev/null | tr '\n' ' '; }

wait_ready() { # → 0 when active (READY=1 received: Type=notify) and still active after SETTLE s
  local deadline=$(( $(date +%s) + TIMEOUT )) s
  while :; do
    s="$(state)"
    case "$s" in
      *ActiveState=active*) break ;;
      *ActiveState=failed*) say "service failed: $s"; return 1 ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || { say "no READY within ${TIMEOUT}s: $s"; return 1; }
    sleep 0.25
  done
  local until=$(( $(date +%s) + SETTLE ))
  while [ "$(date +%s)" -lt "$until" ]; do
    sleep 0.5
    s="$(state)"
    case "$s" in *ActiveState=active*SubState=running*|*SubState=running*ActiveState=active*) ;; *) say "service fell over after READY: $s"; return 1 ;; esac
  done
  return 0
}

restart_service() {
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null
  [ "$START" = 1 ] || return 0
  systemctl restart "$UNIT" || true
}

switch_to "$RELEASE"
[ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$RELEASE" ] && [ -d "$APP/releases/$PREVIOUS" ] && ln -sfn "releases/$PREVIOUS" "$APP/previous"

command -v udevadm >/dev/null && { udevadm control --reload 2>/dev/null || true; udevadm trigger --subsystem-match=tty --subsystem-match=gpio --action=add 2>/dev/null || true; }
[ "$JOURNALD_CHANGED" = 1 ] && { systemctl restart systemd-journald 2>/dev/null || true; }
restart_service

if [ "$START" = 1 ]; then
  say "started $RELEASE, waiting up to ${TIMEOUT}s for READY"
  if ! wait_ready; then
    if [ -n "$PREVIOUS" ] && [ -d "$APP/releases/$PREVIOUS" ] && [ "$PREVIOUS" != "$RELEASE" ]; then
      say "rolling back to $PREVIOUS"
      switch_to "$PREVIOUS"
      rm -f "$APP/previous"
      install_system_files "$APP/releases/$PREVIOUS"
      restart_service
      if wait_ready; then
        die "$RELEASE did not become ready; $PREVIOUS is running again (journalctl -u estate-edge -n 100)"
      fi
      die "$RELEASE did not become ready and $PREVIOUS did not either (journalctl -u estate-edge -n 100; estate-edge doctor)"
    fi
    die "$RELEASE did not become ready and there is no previous release (journalctl -u estate-edge -n 100; estate-edge doctor)"
  fi
  say "$RELEASE is running (READY)"
fi

# --- prune: keep current, previous and the KEEP newest others ---------------------
keep_prev="$( [ -L "$APP/previous" ] && basename "$(readlink "$APP/previous")" || true)"
ls -1t "$APP/releases" | while IFS= read -r rel; do
  case "$rel" in .incoming.*|"$RELEASE"|"$keep_prev") continue ;; esac
  echo "$rel"
done | tail -n +"$((KEEP + 1))" | while IFS= read -r old; do
  rm -rf "${APP:?}/releases/$old"
  say "removed old release $old"
done

# --- how to reach it ------------------------------------------------------------------
NODE="$APP/current/node/bin/node"
[ -x "$NODE" ] || NODE="$SYSTEM_NODE"
CONSOLE="$("$NODE" --input-type=module -e "
  const { loadConfig } = await import('$APP/current/dist/edge/config/load.js');
  try {
    const c = loadConfig({ path: '$ETC/config.yaml' }).config;
    const k = c.console ?? {};
    if (k.enabled === false) console.log('disabled');
    else console.log((k.tls?.enabled ? 'https' : 'http') + ' ' + (k.port ?? 8080));
  } catch (e) { console.log('unknown'); }
" 2>/dev/null || echo unknown)"
IP="$(hostname -I 2>/dev/null | awk '{print $1}')"
echo
echo "estate-edge $RELEASE installed."
case "$CONSOLE" in
  disabled) echo "  console:  disabled in $ETC/config.yaml" ;;
  unknown) echo "  console:  see console.port in $ETC/config.yaml" ;;
  *) echo "  console:  ${CONSOLE% *}://${IP:-<box address>}:${CONSOLE#* }/  (from a laptop or phone on the same network)"
     if [ -z "$R" ]; then
       # The label: the one-time setup token with its address and a QR code a phone scans
       # to open the setup page with the token filled in (also: estate-edge setup-token,
       # estate-edge doctor, the service log). An SVG of the QR code for a printed label.
       echo
       "$R/usr/local/bin/estate-edge" setup-token --config "$ETC/config.yaml" --svg "$ETC/console-setup-qr.svg" 2>/dev/null | sed 's/^/  /' \
         || echo "            first admin: estate-edge setup-token (or journalctl -u estate-edge | grep 'setup token')"
       [ -f "$ETC/console-setup-qr.svg" ] && chmod 0600 "$ETC/console-setup-qr.svg" && echo "  QR label (SVG): $ETC/console-setup-qr.svg"
     else
       echo "            first admin: estate-edge setup-token (token, address and QR code)"
     fi ;;
esac
echo "  config:   $ETC/config.yaml   secrets: $ETC/secrets.env"
echo "  check:    estate-edge doctor"
echo "  logs:     journalctl -u estate-edge -f"
