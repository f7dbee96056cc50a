#!/usr/bin/env bash
# Does a daemon-reload apply a new SocketBindDeny= list to a slice that is
# already running, or does it take systemctl set-property? One fresh Debian 13
# container per round, a process kept running in user.slice, then each step
# followed by a probe bind from a transient unit in the slice. Prints a table;
# asserts nothing. bind_deny writes, reloads, sets the property and probes.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
image="$(scripts/image-for.sh trixie)"
name=cg-bench-prevention-apply
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT

steps=$(cat <<'STEPS'
probe() {
  systemd-run --slice=user.slice --wait --pipe --quiet /usr/bin/python3 -I -c '
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1]))); print("bound")
except OSError as e:
    print("EPERM" if e.errno == 1 else "errno %d" % e.errno)' "$1"
}
deny() { mkdir -p /etc/systemd/system/user.slice.d; printf '[Slice]\n' > /etc/systemd/system/user.slice.d/deny.conf
         for port in "$@"; do echo "SocketBindDeny=tcp:$port" >> /etc/systemd/system/user.slice.d/deny.conf; done; }
setprop() { systemctl set-property --runtime user.slice SocketBindDeny= $(printf 'SocketBindDeny=tcp:%s ' "$@"); }
systemd-run --slice=user.slice --unit=cg-holder --quiet sleep infinity
deny 7401; systemctl daemon-reload; echo "first list (7401)|daemon-reload|7401|$(probe 7401)"
setprop 7401; echo "first list (7401)|then set-property|7401|$(probe 7401)"
deny 7402; rm -f /run/systemd/system.control/user.slice.d/*; systemctl daemon-reload
echo "changed to 7402|daemon-reload|7402|$(probe 7402)"
setprop 7402; echo "changed to 7402|then set-property|7402|$(probe 7402)"
echo "changed to 7402|then set-property|7401 (left the list)|$(probe 7401)"
deny 7402 7403; rm -f /run/systemd/system.control/user.slice.d/*; systemctl daemon-reload
echo "7403 added|daemon-reload|7403|$(probe 7403)"
setprop 7402 7403; echo "7403 added|then set-property|7403|$(probe 7403)"
STEPS
)

echo "| round | list | step | port probed | probe's bind |"
echo "|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --cap-add SYS_ADMIN --cgroupns host --security-opt seccomp=unconfined \
    --security-opt apparmor=unconfined -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock \
    "$image" /lib/systemd/systemd >/dev/null
  for _ in $(seq 30); do
    docker exec "$name" systemctl is-system-running 2>/dev/null | grep -Eq 'running|degraded' && break
    sleep 1
  done
  docker exec -i "$name" bash -s <<<"$steps" | awk -F'|' -v round="$round" '{printf "| %s | %s | %s | %s | %s |\n", round, $1, $2, $3, $4}'
done
