#!/usr/bin/env bash
# Recovery benchmark: a systemd container, the incident's gateway, and the
# restart drill repeated per cleanup method. Prints a table; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

COLLISION_GUARD_IMAGE_DEBIAN12="$(scripts/image-for.sh bookworm)"
export COLLISION_GUARD_IMAGE_DEBIAN12 COLLISION_GUARD_IMAGE_DEBIAN13=unused
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default ANSIBLE_DISPLAY_SKIPPED_HOSTS=false ANSIBLE_PIPELINING=true

inventory=bench/recovery_hosts.yml
trap 'ansible-playbook -i "$inventory" demo/fleet.yml -e demo_state=absent >/dev/null' EXIT
ansible-playbook -i "$inventory" demo/fleet.yml >/dev/null
ansible-playbook -i "$inventory" tests/fleet/sample_services.yml >/dev/null
ansible-playbook -i "$inventory" bench/recovery.yml | sed -n '/TASK \[Print the table\]/,/^$/p'
