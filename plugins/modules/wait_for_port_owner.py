#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: wait_for_port_owner
short_description: Wait until a systemd unit alone holds a port
version_added: 0.1.0
description:
  - Polls the host's listening sockets until every socket on O(port) belongs to O(unit), or O(timeout) passes.
  - A socket belongs to O(unit) as the collection judges ownership everywhere. That means the unit under its
    canonical name (an alias is the same unit), a unit that is part of it (C(ConsistsOf)), or a socket unit that
    triggers it (C(TriggeredBy)), whose socket PID 1 holds.
  - With O(address), only sockets whose bind collides with that address count.
  - Measures on the host, so the time it reports does not include Ansible's round trips.
  - With O(restart=true) it restarts O(unit) first and measures from that moment. This is the time to
    recover that the restart drill of C(qwf.collision_guard.verify) reports.
  - With O(since) it measures from a moment an earlier task recorded instead.
  - Like M(ansible.builtin.wait_for), it fails when the time is up.
  - Reads the sockets the same way as M(qwf.collision_guard.port_usage_info).
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: With O(restart=true) it restarts nothing and reports the port as it is; otherwise it only reads.
  diff_mode:
    support: none
    description: Nothing is written, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Linux with C(/proc); root to see other users' processes.
options:
  port:
    description: The port to watch.
    type: int
    required: true
  protocol:
    description: The port's protocol.
    type: str
    choices: [tcp, udp]
    default: tcp
  unit:
    description: The systemd unit that must own the port, for example C(sms-webhook.service).
    type: str
    required: true
  address:
    description: The address the unit binds. Sockets on addresses that do not collide with it are left out.
      Without it, every socket on the port counts.
    type: str
  restart_unit:
    description:
      - The unit to restart with O(restart=true), when it is not O(unit). Name the socket unit of a socket-activated
        service, since restarting the service leaves the port to PID 1.
    type: str
  timeout:
    description: Seconds to wait before failing.
    type: float
    default: 30
  restart:
    description:
      - Run C(systemctl restart UNIT) just before the wait, and measure from it.
      - A failed restart is returned in RV(restart_rc) and RV(restart_stderr); the wait goes on, since
        systemd may still start the unit by its C(Restart=) policy.
      - In check mode nothing is restarted and the module only reports the port's state.
    type: bool
    default: false
  since:
    description:
      - A host-local time, as the RV(ansible.builtin.command#module:start) of a command task reports it.
      - RV(elapsed) then counts from this moment instead of from the start of the wait.
    type: str
notes:
  - O(restart) and O(since) are mutually exclusive.
"""

EXAMPLES = r"""
- name: Restart the gateway
  ansible.builtin.command: systemctl restart sms-webhook.service
  register: restart
  changed_when: true

- name: Wait until the gateway owns its port again
  qwf.collision_guard.wait_for_port_owner:
    port: 8765
    unit: sms-webhook.service
    since: "{{ restart.start }}"
  register: recovery

- name: Show the time to recover
  ansible.builtin.debug:
    msg: "Recovered in {{ recovery.elapsed }} s"

- name: Restart the gateway and time its recovery exactly
  qwf.collision_guard.wait_for_port_owner:
    port: 8765
    unit: sms-webhook.service
    restart: true
    timeout: 30
  register: drill
  failed_when: false
"""

RETURN = r"""
owned:
  description: Whether O(unit) alone held the port when the wait ended.
  returned: always
  type: bool
  sample: true
state:
  description: V(owned) (the unit alone), V(squatted) (another process holds the port) or V(free) (nobody listens).
  returned: always
  type: str
  sample: owned
elapsed:
  description: Seconds from the restart, O(since) or the start of the wait, until the port was owned or the time ran out.
  returned: always
  type: float
  sample: 0.21
restart_rc:
  description: Exit code of C(systemctl restart).
  returned: when O(restart=true) and not in check mode
  type: int
  sample: 0
restart_stderr:
  description: What C(systemctl restart) printed on failure.
  returned: when O(restart=true) and not in check mode
  type: str
  sample: "Job for sms-webhook.service failed because the control process exited with error code."
owners:
  description: The units that rightly hold the port for O(unit), as systemd says.
  returned: always
  type: list
  elements: str
  sample: [ssh.service, ssh.socket]
holders:
  description: The sockets on the port when the wait ended that collide with O(address), each with the judgement's
    V(verdict) (V(owner), V(squatter) or V(spared)) and its reason.
  returned: always
  type: list
  elements: dict
  sample:
    - {pid: 77, unit: sms-webhook.service, verdict: owner, reason: held by sms-webhook.service}
listeners:
  description: The sockets on the port when the wait ended, as M(qwf.collision_guard.port_usage_info) returns them.
  returned: always
  type: list
  elements: dict
  sample:
    - {protocol: tcp, family: ipv4, address: 0.0.0.0, port: 8765, inode: 4242, pid: 77,
       name: python3, cmdline: [python3, /usr/local/lib/http_service.py, "8765"], unit: sms-webhook.service}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import normalise_address
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    OWNED,
    Judge,
    holder_unit,
    learn_holders,
    parse_host_time,
    port_state,
    survey,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import module_systemd
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import UNIT_TYPES, unit_name_problem

POLL_SECONDS = 0.05


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type='int', required=True),
            protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
            unit=dict(type='str', required=True),
            address=dict(type='str'),
            timeout=dict(type='float', default=30),
            restart=dict(type='bool', default=False),
            restart_unit=dict(type='str'),
            since=dict(type='str'),
        ),
        mutually_exclusive=[['restart', 'since']],
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params['port'] <= 65535:
        module.fail_json(msg='Cannot wait for port %d: it is out of range 1-65535' % params['port'])
    for key in ('unit', 'restart_unit'):
        problem = params[key] and unit_name_problem(params[key], types=UNIT_TYPES)
        if problem:
            module.fail_json(msg='Cannot wait for %s %r: it %s' % (key, params[key], problem))
    address = None
    if params['address'] is not None:
        address, problem = normalise_address(params['address'])
        if problem:
            module.fail_json(msg='Cannot wait for address %r: it %s' % (params['address'], problem))
    restart_unit = params['restart_unit'] or params['unit']

    show, run = module_systemd(module)
    entry = {'service': params['unit'], 'port': params['port'], 'protocol': params['protocol'], 'address': address,
             'evict_holders': []}
    try:
        view = survey([entry], show, run, listeners=[])['view']
    except CollisionGuardError as error:
        module.fail_json(msg='Cannot ask systemd about %s: %s' % (params['unit'], error))
    judge = Judge([dict(entry, service=view.canonical(params['unit']))], view)
    entry = judge.entries[0]

    def look():
        listeners, complete = read_listeners(port=params['port'], protocol=params['protocol'])
        try:
            learn_holders(view, judge.entries, listeners, show, run, socket_map=False)
        except CollisionGuardError as error:
            module.fail_json(msg='Cannot ask systemd about the holders of port %d: %s' % (params['port'], error))
        return port_state(judge, entry, listeners), listeners, complete

    def described(listeners):
        return [dict(pid=listener['pid'], unit=holder_unit(listener), verdict=verdict, reason=reason)
                for listener, verdict, reason in judge.colliding(entry, listeners)]

    if params['restart'] and module.check_mode:
        state, listeners, dummy = look()
        module.exit_json(changed=True, msg='Would restart %s and wait for it to own the port.' % restart_unit,
                         owned=False, state=state, elapsed=0.0, listeners=listeners,
                         owners=sorted(judge.owners(entry['service'])), holders=described(listeners))

    result = dict(changed=False)
    started = time.time()
    if params['since']:
        try:
            started = parse_host_time(params['since'])
        except ValueError as error:
            module.fail_json(msg='Cannot read since: %s' % error)
    elif params['restart'] and not module.check_mode:
        systemctl = module.get_bin_path('systemctl', required=True)
        started = time.time()
        rc, dummy, err = module.run_command([systemctl, 'restart', '--', restart_unit])
        result.update(changed=True, restart_rc=rc, restart_stderr=err.strip())
    deadline = time.time() + params['timeout']

    while True:
        state, listeners, complete = look()
        now = time.time()
        if state == OWNED or now >= deadline:
            break
        time.sleep(POLL_SECONDS)

    result.update(owned=state == OWNED, state=state, elapsed=round(now - started, 3), listeners=listeners,
                  owners=sorted(judge.owners(entry['service'])), holders=described(listeners))
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); their sockets show pid=null.')
    if state != OWNED:
        module.fail_json(msg='%s did not own %d/%s within %s s: the port is %s' % (
            params['unit'], params['port'], params['protocol'], params['timeout'], state), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
