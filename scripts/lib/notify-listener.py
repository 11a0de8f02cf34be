# A stand-in for systemd's notify socket, for tests: binds an AF_UNIX datagram socket at
# argv[1] and prints every message as one JSON line {"t": ms (monotonic), "pid": sender,
# "msg": {"READY": "1", ...}}. File descriptors passed with BARRIER=1 are closed at
# once, which is how systemd acknowledges a barrier. Stops on SIGTERM or stdin EOF
# (with --daemon as second argument: on SIGTERM only, for use in the background).
# Run with /usr/bin/python3 (standard library only).
import array, json, os, select, socket, struct, sys, time

path = sys.argv[1]
watch_stdin = not (len(sys.argv) > 2 and sys.argv[2] == "--daemon")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": path}), flush=True)
while True:
    r, _, _ = select.select([s, sys.stdin] if watch_stdin else [s], [], [], 1.0)
    if watch_stdin and sys.stdin in r and not sys.stdin.readline():
        break
    if s not in r:
        continue
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64) + socket.CMSG_SPACE(12))
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in fds:
                os.close(fd)
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iii", payload[:12])[0]
    msg = {}
    for line in data.decode("utf-8", "replace").split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            msg[k] = v
    print(json.dumps({"t": time.monotonic() * 1000, "pid": pid, "msg": msg}), flush=True)
