#!/usr/bin/env bash
# A stand-in for systemctl in installer tests: emulates just enough of systemd for one
# Type=notify unit, estate-edge.service, installed under $FAKE_SYSTEMD_ROOT.
#   start/restart  runs ExecStartPre= then ExecStart= from the installed unit file (paths
#                  under /opt/estate-edge and /etc/estate-edge moved into the root), with
#                  NOTIFY_SOCKET pointing at a real datagram socket (notify-listener.py),
#                  behind $FAKE_EXEC_PREFIX when set (an emulator for another arch)
#   show           ActiveState/SubState: active/running once READY=1 came with the
#                  process's MAINPID; activating/start before; activating/auto-restart
#                  when the process died (Restart=always); failed when ExecStartPre failed
#   stop, daemon-reload, enable, --version (FAKE_SYSTEMD_VERSION, default 252)
# Every call is appended to $FAKE_SYSTEMD_STATE/calls.
set -u
ROOT="${FAKE_SYSTEMD_ROOT:?}"
ST="${FAKE_SYSTEMD_STATE:?}"
LISTENER="${FAKE_NOTIFY_LISTENER:?}"
mkdir -p "$ST"
echo "$*" >>"$ST/calls"

args=()
for a in "$@"; do case "$a" in -*) [ "$a" = --version ] && args+=("$a") ;; *) args+=("$a") ;; esac; done
verb="${args[0]:-}"
unit="${args[$((${#args[@]} - 1))]:-}"

pid_alive() { [ -f "$ST/pid" ] && kill -0 "$(cat "$ST/pid")" 2>/dev/null; }

exec_line() { # $1 = key; the command with root-relative paths
  sed -n "s/^$1=//p" "$ROOT/etc/systemd/system/estate-edge.service" | head -1 |
    sed -e "s#^/opt/estate-edge/#$ROOT/opt/estate-edge/#" -e "s# /opt/estate-edge/# $ROOT/opt/estate-edge/#g" -e "s# /etc/estate-edge/# $ROOT/etc/estate-edge/#g"
}

ensure_listener() {
  if [ -f "$ST/listener.pid" ] && kill -0 "$(cat "$ST/listener.pid")" 2>/dev/null; then return; fi
  rm -f "$ST/notify.sock"
  /usr/bin/python3 "$LISTENER" "$ST/notify.sock" --daemon >>"$ST/notify.log" 2>&1 </dev/null &
  echo $! >"$ST/listener.pid"
  for _ in $(seq 100); do [ -S "$ST/notify.sock" ] && return; sleep 0.05; done
}

stop_service() {
  if pid_alive; then
    local p; p="$(cat "$ST/pid")"
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  rm -f "$ST/pid" "$ST/failed"
}

start_service() {
  stop_service
  ensure_listener
  local pre; pre="$(exec_line ExecStartPre)"
  # "-" before the command: its failure does not fail the start (systemd.service(5)).
  local ignore=0
  case "$pre" in -*) ignore=1; pre="${pre#-}" ;; esac
  if [ -n "$pre" ] && ! env -i PATH="$PATH" $pre >>"$ST/service.log" 2>&1 && [ "$ignore" = 0 ]; then
    touch "$ST/failed"
    return 1
  fi
  readlink "$ROOT/opt/estate-edge/current" >"$ST/started-release"
  # shellcheck disable=SC2086
  # FAKE_EXEC_PREFIX: an emulator for a release of another arch (qemu-aarch64-static -L …).
  env -i PATH="$PATH" HOME=/nonexistent NOTIFY_SOCKET="$ST/notify.sock" WATCHDOG_USEC=30000000 ${FAKE_EXEC_PREFIX:-} $(exec_line ExecStart) >>"$ST/service.log" 2>&1 </dev/null &
  echo $! >"$ST/pid"
}

case "$verb" in
  --version) echo "systemd ${FAKE_SYSTEMD_VERSION:-252} (fake)"; echo "+PAM" ;;
  daemon-reload|enable|disable|is-enabled|kill) ;;
  start|restart)
    [ "$unit" = estate-edge.service ] || exit 0
    start_service ;;
  stop)
    [ "$unit" = estate-edge.service ] || exit 0
    stop_service ;;
  shutdown-fake)  # test teardown: the service and the notify listener
    stop_service
    [ -f "$ST/listener.pid" ] && kill "$(cat "$ST/listener.pid")" 2>/dev/null
    rm -f "$ST/listener.pid" ;;
  show)
    if [ -f "$ST/failed" ]; then echo "ActiveState=failed"; echo "SubState=failed"
    elif pid_alive; then
      if grep -q "\"READY\": \"1\".*\"MAINPID\": \"$(cat "$ST/pid")\"\|\"MAINPID\": \"$(cat "$ST/pid")\".*\"READY\": \"1\"" "$ST/notify.log" 2>/dev/null; then
        echo "ActiveState=active"; echo "SubState=running"
      else echo "ActiveState=activating"; echo "SubState=start"; fi
    elif [ -f "$ST/pid" ]; then echo "ActiveState=activating"; echo "SubState=auto-restart"
    else echo "ActiveState=inactive"; echo "SubState=dead"; fi ;;
  *) echo "fake systemctl: unsupported: $*" >&2; exit 1 ;;
esac
exit 0
