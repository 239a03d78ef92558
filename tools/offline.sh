#!/bin/sh
# Run a command with no network at all, to prove the series never needs one:
#
#     tools/offline.sh make test        (what .ci/run does)
#
# The command runs in a fresh network namespace (`unshare -n`; as root, which CI is, or else in a user
# namespace, `unshare -rn`, where the kernel allows it). Such a namespace has only a loopback
# interface, and it starts *down*: it is brought up first, because Jupyter kernels talk to their
# client over ZeroMQ on 127.0.0.1, and the browser test serves JupyterLab there. Nothing else is
# reachable: no DNS, no route out.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}  # any Python: it only brings loopback up and checks it

if [ "$(id -u)" = 0 ]; then
    UNSHARE="unshare --net"
elif unshare --user --map-root-user --net true 2>/dev/null; then
    UNSHARE="unshare --user --map-root-user --net"
else
    echo "offline.sh: cannot create a network namespace (needs root or user namespaces)" >&2
    exit 2
fi

# Inside: bring loopback up (with `ip` when present, else the same ioctl from Python), check
# that the outside world is unreachable and loopback works, then hand over to the command.
exec $UNSHARE -- sh -c '
set -e
python=$1; shift
if command -v ip >/dev/null 2>&1; then
    ip link set lo up
else
    "$python" -c "
import fcntl, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack(\"16sH22x\", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack(\"16sH22x\", b\"lo\", 0)))[1]
    fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack(\"16sH22x\", b\"lo\", flags | IFF_UP))
"
fi
"$python" -c "
import socket
try:
    socket.create_connection((\"1.1.1.1\", 53), timeout=2)
except OSError:
    pass
else:
    raise SystemExit(\"offline.sh: the network is reachable inside the namespace\")
server = socket.create_server((\"127.0.0.1\", 0))
socket.create_connection(server.getsockname(), timeout=2).close()  # loopback works
"
echo "offline.sh: running \"$*\" with no network (loopback only)"
exec "$@"
' offline "$PYTHON" "$@"
