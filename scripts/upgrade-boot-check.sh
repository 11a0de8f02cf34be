#!/bin/sh
# Boot check of signed upgrades (the unit's ExecStartPre; edge/upgrade/module.ts does the
# rest). Runs before every start of the gateway, in plain sh: it must work whatever state
# the release `current` points at is in, and needs no Node.
#
#   upgrade-boot-check.sh [--root DIR]
#
# An upgrade switches `current` to the new release and writes upgrade-pending.json until
# the new version commits (READY, uplink and self-test passed). If that new release is
# about to be started a second time without having committed (it crashed, was killed,
# or the power went during its first start), `current` goes back to the release named
# `from` and the reason is left in upgrade-rollback for the old version to report.
# Never fails the start: every problem ends in "start what current points at".
# Without --root: the install this script is in (it runs as <app>/current/scripts/…,
# so two levels up along the link is <app>: /opt/estate-edge on a box).
APP="$(cd "$(dirname "$0")/../.." 2>/dev/null && pwd -L)" || APP=/opt/estate-edge
[ "${1:-}" = "--root" ] && APP="${2%/}/opt/estate-edge"
M="$APP/upgrade-pending.json"
[ -f "$M" ] || exit 0
field() { tr -d '\n' <"$M" | sed -n "s/.*\"$1\" *: *\"\([^\"]*\)\".*/\1/p"; }
TO="$(field to)"
FROM="$(field from)"
CUR="$(basename "$(readlink "$APP/current" 2>/dev/null)" 2>/dev/null)"
[ -n "$TO" ] && [ "$CUR" = "$TO" ] || exit 0
switch_back() {
  [ -n "$FROM" ] && [ -d "$APP/releases/$FROM" ] || { echo "upgrade-boot-check: $TO did not commit but there is no release $FROM to go back to" >&2; exit 0; }
  ln -sfn "releases/$FROM" "$APP/current.new" && mv -T "$APP/current.new" "$APP/current" && sync
  echo "upgrade-boot-check: $TO did not commit: back to $FROM ($(cat "$APP/upgrade-rollback" 2>/dev/null))" >&2
}
if [ -e "$APP/upgrade-rollback" ]; then
  # The new version decided to roll back and was cut before its own switch.
  switch_back
elif [ -e "$APP/upgrade-tried" ]; then
  printf '%s\n' "release $TO did not commit after its first start (it crashed, was stopped or lost power before READY, the uplink and the self-test passed)" >"$APP/upgrade-rollback.tmp"
  mv "$APP/upgrade-rollback.tmp" "$APP/upgrade-rollback" && sync
  switch_back
else
  : >"$APP/upgrade-tried" && sync
fi
exit 0
