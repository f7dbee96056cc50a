#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: port_ownership_info
short_description: Compare the port registry with who holds each port on a host
version_added: 0.1.0
description:
  - For each entry of O(registry) whose unit exists on the host, says who holds its port now.
  - An entry's unit is known as systemd knows it. An alias is the unit it names, and a glob such as
    C(postgresql@*-main) is the one loaded unit it fits on this host. A glob that fits several is an error.
  - V(ok) when only the registered unit's owners hold it. The owners are the unit itself, the units that are part of
    it (C(ConsistsOf)), and the socket units that trigger it (C(TriggeredBy)).
    V(critical) when any other process holds it, naming that process and why; V(warning) when nothing listens on it.
  - A socket on another address than the entry's RV(findings[].address) counts only when the two binds collide
    under Linux's rules, so C(127.0.0.53:53) does not conflict with an entry for C(127.0.0.2:53).
  - Also lists the listeners that no entry claims, for information.
  - Also says in RV(guard_ok) whether the guard itself can run on the host. It looks for the programs and files that
    the collection's C(port-cleanup.conf) drop-ins run, as their C(ExecStartPre=) lines name them. The eviction
    helper, each collection module file it imports, and its interpreter (or C(fuser)) must be there. A guard that
    cannot be checked is reported as broken, with the reason, and the module does not fail for it.
  - With O(prevent_in), also says whether prevention holds on the host (RV(prevention)). What harden armed is read
    from its record in C(/etc/collision-guard/monitor.json), or else from the collection's C(collision-guard-deny.conf)
    drop-ins on those units. Where it armed C(SocketBindDeny=), a transient unit in each armed slice tries one bind,
    which must be refused. A critical finding whose holder runs inside one of O(prevent_in) is marked
    RV(findings[].prevention_bypassed).
  - Reads the sockets and their owners the same way as M(qwf.collision_guard.port_usage_info).
    The playbook C(qwf.collision_guard.check) runs it across a fleet.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.info_module
  - qwf.collision_guard.registry
options:
  prevent_in:
    description:
      - The slices and units where binds on the registered ports should be refused, as
        C(collision_guard_prevent_in) lists them. The playbook C(qwf.collision_guard.check) passes them when
        C(collision_guard_prevent) is on.
      - Empty leaves prevention out; RV(prevention) then says V(off).
    type: list
    elements: str
    default: []
attributes:
  platform:
    support: full
    platforms: posix
    description: Linux with C(/proc) and systemd; root to see other users' processes.
notes:
  - A critical finding means the registered unit's next start fails unless its C(port-cleanup.conf) evicts the holder.
  - A broken guard does not stop a start whose port is free, but it frees no port either, so a squatter would win.
seealso:
  - module: qwf.collision_guard.port_usage_info
"""

EXAMPLES = r"""
- name: Check who holds the registered ports
  qwf.collision_guard.port_ownership_info:
    registry: "{{ collision_guard_registry }}"
  register: ownership

- name: Check who holds the registered ports, and whether prevention holds
  qwf.collision_guard.port_ownership_info:
    registry: "{{ collision_guard_registry }}"
    prevent_in: [user.slice]
  register: ownership

- name: Fail on a squatter
  ansible.builtin.assert:
    that: ownership.findings | selectattr('severity', 'equalto', 'critical') | list | length == 0
"""

RETURN = r"""
findings:
  description: One per registry entry whose unit is on the host, the most severe first.
  returned: always
  type: list
  elements: dict
  contains:
    port:
      description: The registered port.
      type: int
      returned: always
      sample: 8765
    protocol:
      description: Its protocol.
      type: str
      returned: always
      sample: tcp
    address:
      description: The address the entry claims, or V(null) for every address.
      type: str
      returned: always
      sample: null
    service:
      description: The registered unit, by its canonical name on this host.
      type: str
      returned: always
      sample: sms-webhook.service
    severity:
      description: V(ok), V(warning) (nothing listens) or V(critical) (another process holds it).
      type: str
      returned: always
      sample: critical
    holders:
      description: The processes other than the registered unit's owners that hold the port, with pid, name, user,
        cmdline, unit, container and the reason of the judgement. Empty unless critical.
      type: list
      elements: dict
      returned: always
      sample: [{pid: 4242, name: python3, user: root, cmdline: [python3, -m, http.server, "8765"],
                unit: session-7.scope, container: null, reason: not registered for this port}]
    message:
      description: The finding in words.
      type: str
      returned: always
      sample: "held by session-7.scope (pid 4242), not by sms-webhook.service: its next start fails"
    prevention_bypassed:
      description:
        - V(true) when a holder of a critical finding runs inside a unit of O(prevent_in) where harden armed
          C(SocketBindDeny=) for this port, so its bind should have been refused. That holder carries C(inside),
          the unit it runs in, and the message starts with C(prevention bypassed).
      type: bool
      returned: always
      sample: false
guard_ok:
  description: V(true) when every program and file the collection's C(port-cleanup.conf) drop-ins run is there,
    or when no drop-in runs anything; V(false) when one is missing or the check could not be made.
  returned: always
  type: bool
  sample: false
guard_problems:
  description: Why the guard is broken, one line per missing program or file, naming the units whose drop-ins need it.
    Empty when RV(guard_ok) is V(true).
  returned: always
  type: list
  elements: str
  sample: ["/usr/local/lib/collision-guard/collision-guard-evict is missing (needed by the port-cleanup.conf of
            sms-webhook.service, status-api.service)"]
prevention:
  description: Prevention on this host, as harden armed it and as a probe bind from each armed slice finds it now.
  returned: always
  type: dict
  contains:
    state:
      description: V(active), V(unavailable) (this systemd cannot refuse binds), V(degraded) (armed, but a probe
        bind was not refused or could not run) or V(off).
      type: str
      returned: always
      sample: active
    summary:
      description: The state in words, the line C(qwf.collision_guard.check) prints for the host.
      type: str
      returned: always
      sample: unavailable (systemd 252 without BPF_FRAMEWORK)
    active:
      description: V(true) when harden armed it and every probe bind was refused.
      type: bool
      returned: always
      sample: true
    units:
      description: The units that carry the deny drop-in.
      type: list
      elements: str
      returned: always
      sample: [user.slice]
    rules:
      description: The C(SocketBindDeny=) rules armed there.
      type: list
      elements: str
      returned: always
      sample: ["tcp:8765", "udp:8766"]
    probes:
      description: One probe bind per armed slice, with the first rule, each with C(unit), C(rule), C(outcome)
        (V(denied), V(allowed) or V(error)), C(errno), C(sec) (how long the bind took to fail) and C(detail).
      type: list
      elements: dict
      returned: always
      sample: [{unit: user.slice, rule: "tcp:8765", outcome: denied, errno: 1, sec: 0.00003,
                detail: bind() refused with EPERM in 30 us}]
unregistered:
  description: Listeners on ports the registry does not name, one per port and process, for information.
  returned: always
  type: list
  elements: dict
  sample: [{port: 8799, protocol: tcp, address: 0.0.0.0, pid: 311, name: python3, user: root,
            cmdline: [python3, -m, http.server, "8799"], unit: scratch-api.service, container: null}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._monitor import (
    check_prevention, guard_status, host_prevention_record)
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import gather_findings
from ansible_collections.qwf.collision_guard.plugins.module_utils._prevention import prevent_in_problems
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import module_systemd


def main():
    module = AnsibleModule(
        argument_spec=dict(registry=dict(type='list', elements='dict', required=True),
                           prevent_in=dict(type='list', elements='str', default=[])),
        supports_check_mode=True,
    )
    prevent_in = module.params['prevent_in']
    try:
        problems = prevent_in_problems(prevent_in, where='prevent_in')
        if problems:
            raise CollisionGuardError('prevent_in names units that cannot carry the deny', problems)
        registry = validate_registry(module.params['registry'], where='registry')
        show, run = module_systemd(module)
        findings, unregistered, complete, problems, dummy_answered = gather_findings(registry, show, run)
        if problems:
            raise CollisionGuardError('the registry does not fit this host', problems)
    except CollisionGuardError as error:
        module.fail_json(msg='Cannot check port ownership: %s' % error.full_message())
    except (IOError, OSError) as error:
        module.fail_json(msg='Cannot read the sockets of this host: %s' % error)
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); '
                    'a port they hold may be reported without its holder.')
    guard_ok, guard_problems = guard_status()
    for problem in guard_problems:
        module.warn('The guard on this host is broken: %s' % problem)
    record = host_prevention_record(prevent_in)
    if record.get('problem'):
        module.warn('Cannot read what prevention harden armed: %s' % record['problem'])
    prevention, findings, lines = check_prevention(record, findings, units=prevent_in)
    for dummy_priority, line in lines:
        module.warn(line[0].upper() + line[1:])
    prevention = dict((key, prevention[key]) for key in ('state', 'summary', 'active', 'units', 'rules', 'probes'))
    module.exit_json(changed=False, findings=findings, unregistered=unregistered, guard_ok=guard_ok,
                     guard_problems=guard_problems, prevention=prevention)


if __name__ == '__main__':
    main()
