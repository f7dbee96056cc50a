#!/usr/bin/env bash
# Prevention benchmark: one Debian 13 systemd container with the incident's
# gateway. Eviction only first (the recovery drill, prevention off), then harden
# as a user runs it (prevention on) and bench/prevention.py inside the container:
# squatters' binds, the service's downtime, the BPF program's cost. Prints a
# table; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

COLLISION_GUARD_IMAGE_DEBIAN13="$(scripts/image-for.sh trixie)"
export COLLISION_GUARD_IMAGE_DEBIAN13 COLLISION_GUARD_IMAGE_DEBIAN12=unused
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_PIPELINING=true

host=cg-bench-prevention
work="$(mktemp -d)"
inventory="$work/hosts.yml"
cat >"$inventory" <<EOF
bench:
  vars:
    ansible_connection: community.docker.docker
    ansible_python_interpreter: /usr/bin/python3
    sample_services:
      - {name: sms-webhook, program: http_service.py, port: 8765}
    collision_guard_registry:
      - {port: 8765, service: sms-webhook, notes: Twilio inbound}
  hosts:
    $host: {demo_suite: trixie}
EOF
trap 'ansible-playbook -i "$inventory" demo/fleet.yml -e demo_state=absent >/dev/null; rm -rf "$work"' EXIT
ansible-playbook -i "$inventory" demo/fleet.yml >/dev/null
ansible-playbook -i "$inventory" tests/fleet/sample_services.yml >/dev/null

# Eviction only: the recovery benchmark's restart drill, 20 times per method.
ansible-playbook -i "$inventory" bench/recovery.yml -e '{"collision_guard_prevent": false, "bench_methods": ["evict", "fuser"]}' \
  | sed -n '/TASK \[Print the table\]/,/^$/p' | tee "$work/recovery.txt"
evict="$(sed -n 's/^ *"| evict | \([0-9]*\) | \([0-9]*\) | \([0-9.]*\) | \([0-9.]*\) |.*/\1 \2 \3 \4/p' "$work/recovery.txt")"
[ -n "$evict" ] || { echo "prevention.sh: no evict figures in the recovery drill's table" >&2; exit 1; }

# Prevention: harden with its defaults, as a user would.
ansible-playbook -i "$inventory" playbooks/harden.yml | sed -n 's/.*"msg": "\(prevention: .*\)"$/\1/p'
docker cp bench/prevention.py "$host:/root/prevention.py"
# shellcheck disable=SC2086  # evict holds four numbers
docker exec "$host" python3 -I /root/prevention.py --port 8765 --service sms-webhook --evict $evict
