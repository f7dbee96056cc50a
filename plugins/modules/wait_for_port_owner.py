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
  - Measures on the host, so the time it reports does not include Ansible's round trips.
    With O(since) it reports the time from that moment, for example the start of a C(systemctl restart).
  - Like M(ansible.builtin.wait_for), it fails when the time is up.
  - Reads the sockets the same way as M(qwf.collision_guard.port_usage_info).
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Read-only; it waits the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
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
  timeout:
    description: Seconds to wait before failing.
    type: float
    default: 30
  since:
    description:
      - A host-local time, as the RV(ansible.builtin.command#module:start) of a command task reports it.
      - RV(elapsed) then counts from this moment instead of from the start of the wait.
    type: str
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
  description: Seconds from O(since), or from the start of the wait, until the port was owned or the time ran out.
  returned: always
  type: float
  sample: 0.21
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

from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    OWNED,
    parse_host_time,
    port_owner_state,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners

POLL_SECONDS = 0.05


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type='int', required=True),
            protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
            unit=dict(type='str', required=True),
            timeout=dict(type='float', default=30),
            since=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params['port'] <= 65535:
        module.fail_json(msg='Cannot wait for port %d: it is out of range 1-65535' % params['port'])

    started = time.time()
    if params['since']:
        try:
            started = parse_host_time(params['since'])
        except ValueError as error:
            module.fail_json(msg='Cannot read since: %s' % error)
    deadline = time.time() + params['timeout']

    while True:
        listeners, complete = read_listeners(port=params['port'], protocol=params['protocol'])
        state = port_owner_state(listeners, params['unit'])
        now = time.time()
        if state == OWNED or now >= deadline:
            break
        time.sleep(POLL_SECONDS)

    result = dict(changed=False, owned=state == OWNED, state=state, elapsed=round(now - started, 3), listeners=listeners)
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); their sockets show pid=null.')
    if state != OWNED:
        module.fail_json(msg='%s did not own %d/%s within %s s: the port is %s' % (
            params['unit'], params['port'], params['protocol'], params['timeout'], state), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
