#!/usr/bin/env bash
# Make sure a Docker engine answers, and debootstrap is there to build images.
# On Debian or Ubuntu as root, install and start what is missing; elsewhere
# say exactly what to install.
set -euo pipefail

log_dir="${COLLISION_GUARD_CACHE:-.cache}"
need_debootstrap="${1:-}"

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have dockerd || missing+=(docker.io)
[ -n "$need_debootstrap" ] && ! have debootstrap && missing+=(debootstrap)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && have apt-get; then
    echo "ensure-docker: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "ensure-docker: missing ${missing[*]}." >&2
    echo "  Install a Docker engine (package docker.io or Docker CE) and start it," >&2
    [ -n "$need_debootstrap" ] && echo "  and debootstrap, or set COLLISION_GUARD_IMAGE_DEBIAN12/13 to systemd images you can pull." >&2
    exit 1
  fi
fi

if docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != 0 ]; then
  echo "ensure-docker: the Docker engine is not running; start it (for example: sudo systemctl start docker)." >&2
  exit 1
fi

mkdir -p "$log_dir"
echo "ensure-docker: starting dockerd (log: $log_dir/dockerd.log)" >&2
nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see $log_dir/dockerd.log" >&2
exit 1
