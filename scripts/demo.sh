#!/usr/bin/env bash
# make demo: the incident on a local container fleet, before and after
# harden.yml. KEEP=1 leaves the fleet running for a look around.
set -euo pipefail
cd "$(dirname "$0")/.."

# Images without sudo, as a minimal Debian install: the inventory connects as root, without become.
COLLISION_GUARD_IMAGE_DEBIAN12="$(scripts/image-for.sh bookworm plain)"
COLLISION_GUARD_IMAGE_DEBIAN13="$(scripts/image-for.sh trixie plain)"
export COLLISION_GUARD_IMAGE_DEBIAN12 COLLISION_GUARD_IMAGE_DEBIAN13
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default ANSIBLE_DISPLAY_SKIPPED_HOSTS=false

inventory=tests/fleet/demo_hosts.yml
banner() { printf '\n==== %s ====\n' "$*"; }
teardown() {
  if [ "${KEEP:-0}" = 1 ]; then
    banner "Fleet kept (KEEP=1): docker exec -it cg-demo-1 bash to look around, make demo-down to remove it"
  else
    banner "Tearing the fleet down"
    ansible-playbook -i "$inventory" demo/fleet.yml -e demo_state=absent >/dev/null
  fi
}
trap teardown EXIT

banner "1. A fleet of three systemd hosts with an SMS gateway on 8765"
ansible-playbook -i "$inventory" demo/fleet.yml
ansible-playbook -i "$inventory" tests/fleet/sample_services.yml

banner "2. The incident, unprotected: a squatter takes 8765, the gateway restarts"
ansible-playbook -i "$inventory" demo/incident.yml -e demo_phase=before | grep -E '"msg"|PLAY RECAP|failed=[1-9]' || true

banner "3. ansible-playbook qwf.collision_guard.harden"
ansible-playbook -i "$inventory" qwf.collision_guard.harden

banner "4. The same incident after harden"
ansible-playbook -i "$inventory" demo/incident.yml -e demo_phase=after | grep -E '"msg"|PLAY RECAP|failed=[1-9]'
