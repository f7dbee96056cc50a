#!/usr/bin/env bash
# Fleet benchmark: 20 systemd containers with two registered services each,
# all in one run. Times, on the same fleet and with the same settings:
# ansible -m ping (the reference), harden's first run, its rerun, and
# check.yml. Prints wall time, the ratio to ping, tasks, round trips
# (commands the connection ran) and file transfers per host; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Images without sudo, as a minimal Debian install: the inventory connects as root, without become.
COLLISION_GUARD_IMAGE_DEBIAN12="$(scripts/image-for.sh bookworm plain)"
COLLISION_GUARD_IMAGE_DEBIAN13="$(scripts/image-for.sh trixie plain)"
export COLLISION_GUARD_IMAGE_DEBIAN12 COLLISION_GUARD_IMAGE_DEBIAN13
# Every host at once (forks), modules sent over the connection's stdin
# (pipelining), and a plain log: the same for the reference and for harden.
export ANSIBLE_FORKS=20 ANSIBLE_PIPELINING=true ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default \
  ANSIBLE_HOST_KEY_CHECKING=false ANSIBLE_DISPLAY_SKIPPED_HOSTS=true

# Each systemd container takes inotify instances of the host's root; at the
# default 128, those past about 15 hang in "initializing" with "Failed to
# allocate inotify fd: Too many open files".
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  echo "fleet.sh: raising fs.inotify.max_user_instances to 1024 for 20 systemd containers" >&2
  sysctl -q -w fs.inotify.max_user_instances=1024
fi

inventory=bench/fleet_hosts.yml
logs="$(mktemp -d)"
trap 'ansible-playbook -i "$inventory" demo/fleet.yml -e demo_state=absent >/dev/null; rm -rf "$logs"' EXIT
ansible-playbook -i "$inventory" demo/fleet.yml >/dev/null
ansible-playbook -i "$inventory" tests/fleet/sample_services.yml >/dev/null

# Each step runs with a docker that counts its calls on the way (an exec is a
# round trip to a host, one running dd a file transfer), and with -v, whose
# results name the files harden wrote. Not -vvv: at that verbosity the docker
# connection asks docker about the container's user before every task.
real_docker="$(command -v docker)"
mkdir -p "$logs/bin"
cat >"$logs/bin/docker" <<SHIM
#!/bin/sh
printf '%s\n' "\$*" >>"\$FLEET_CALLS"
exec "$real_docker" "\$@"
SHIM
chmod +x "$logs/bin/docker"

measure() {
  local name="$1"; shift
  local began ended
  began=$(date +%s.%N)
  FLEET_CALLS="$logs/$name.calls" PATH="$logs/bin:$PATH" "$@" -v >"$logs/$name.log" 2>&1 \
    || echo "fleet.sh: $name exited non-zero (see the table's failed column)" >&2
  ended=$(date +%s.%N)
  echo "$name $began $ended" >>"$logs/times"
}

measure ping ansible -i "$inventory" all -m ansible.builtin.ping
measure first ansible-playbook -i "$inventory" qwf.collision_guard.harden
measure rerun ansible-playbook -i "$inventory" qwf.collision_guard.harden
measure check ansible-playbook -i "$inventory" qwf.collision_guard.check
# The same rerun as the free strategy and serial batches run it: still correct, still changed=0.
measure free env ANSIBLE_STRATEGY=free ansible-playbook -i "$inventory" qwf.collision_guard.harden
measure serial ansible-playbook -i "$inventory" bench/fleet_serial.yml

python3 - "$logs" <<'PY'
import json
import os
import re
import statistics
import sys

logs = sys.argv[1]
times = {}
for line in open(logs + '/times'):
    name, began, ended = line.split()
    times[name] = float(ended) - float(began)

recap = re.compile(r'^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)', re.M)


def per_host(name):
    text = open('%s/%s.log' % (logs, name)).read()
    hosts = {}
    for host, ok, changed, unreachable, failed, skipped in recap.findall(text):
        # serial prints one recap at the end, with every batch's counts.
        hosts[host] = dict(ok=int(ok), changed=int(changed), failed=int(failed) + int(unreachable), skipped=int(skipped))
    if name == 'ping':  # no recap: one task, ok or not
        for host, outcome in re.findall(r'^(\S+) \| (SUCCESS|FAILED|UNREACHABLE)', text, re.M):
            hosts[host] = dict(ok=int(outcome == 'SUCCESS'), changed=0, failed=int(outcome != 'SUCCESS'), skipped=0)
    calls = open('%s/%s.calls' % (logs, name)).read().splitlines() if os.path.exists('%s/%s.calls' % (logs, name)) else []
    for host in hosts:
        execs = [call for call in calls if call.startswith('exec ') and (' %s ' % host) in call]
        hosts[host]['execs'] = len(execs)
        hosts[host]['puts'] = sum(1 for call in execs if 'dd of=' in call)
        hosts[host]['helper_sent'] = 0
    # The helper goes inside a module's arguments; the results say when it was written.
    for host, result in re.findall(r'^changed: \[(\S+)\] => (\{.*\})$', text, re.M):
        try:
            written = json.loads(result).get('written') or []
        except ValueError:
            continue
        if host in hosts and any(path.endswith('/collision-guard-evict') for path in written):
            hosts[host]['helper_sent'] += 1
    return hosts


def median(hosts, key):
    values = [entry[key] for entry in hosts.values()]
    return statistics.median(values) if values else 0


print('Fleet: 20 systemd containers (10 Debian 12, 10 Debian 13), 2 registered services each; forks 20, pipelining on.')
print('Per host: the median over the fleet. Round trips: commands run over the connection (docker exec). Files put: those')
print('copied over it (dd). The helper travels inside a module run; the last column counts the hosts whose run wrote it.')
print()
print('| step | wall (s) | vs ping | hosts | failed | changed hosts | tasks run / skipped per host | round trips per host | files put per host | hosts sent the helper |')
print('|---|---|---|---|---|---|---|---|---|---|')
labels = {'ping': 'ansible -m ping', 'first': 'harden, first run', 'rerun': 'harden, rerun', 'check': 'check.yml',
          'free': 'harden, rerun, strategy free', 'serial': 'harden, rerun, serial 5'}
results = {}
for name in ('ping', 'first', 'rerun', 'check', 'free', 'serial'):
    hosts = per_host(name)
    results[name] = hosts
    print('| %s | %.1f | %.2fx | %d | %d | %d | %g / %g | %g | %g | %d |' % (
        labels[name], times[name], times[name] / times['ping'], len(hosts),
        sum(1 for entry in hosts.values() if entry['failed']),
        sum(1 for entry in hosts.values() if entry['changed']),
        median(hosts, 'ok'), median(hosts, 'skipped'), median(hosts, 'execs'), median(hosts, 'puts'),
        sum(1 for entry in hosts.values() if entry['helper_sent'])))
print()
print('Goals: rerun <= 4x ping: %.2fx (%s); first run <= 2x rerun: %.2fx (%s); changed=0 on every host in the rerun: %s' % (
    times['rerun'] / times['ping'], 'met' if times['rerun'] <= 4 * times['ping'] else 'NOT met',
    times['first'] / times['rerun'], 'met' if times['first'] <= 2 * times['rerun'] else 'NOT met',
    'met' if results['rerun'] and not any(entry['changed'] for entry in results['rerun'].values()) else 'NOT met'))
PY
