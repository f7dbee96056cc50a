#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: port_usage_info
short_description: List listening sockets with the process and systemd unit that own them
version_added: 0.1.0
description:
  - Returns every TCP socket in LISTEN and every bound, unconnected UDP socket, IPv4 and IPv6,
    in the host's network namespace.
  - Each socket is attributed to the processes holding it, with their command line and systemd unit.
    The unit comes from C(/proc/PID/cgroup), cgroup v1 and v2 alike, also inside containers.
  - Reads C(/proc) directly; runs no C(ss), C(netstat) or C(ps).
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Read-only; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Linux with C(/proc).
options:
  port:
    description:
      - Return only sockets on this port.
    type: int
  protocol:
    description:
      - Return only sockets of this protocol.
    type: str
    choices: [tcp, udp]
notes:
  - Without root, the sockets of other users' processes are still listed, with C(pid=null), and a warning says why.
"""

EXAMPLES = r"""
- name: Who holds port 8765?
  qwf.collision_guard.port_usage_info:
    port: 8765
    protocol: tcp
  register: usage

- name: Show the owners
  ansible.builtin.debug:
    msg: "{{ usage.listeners | map(attribute='unit') | list }}"
"""

RETURN = r"""
listeners:
  description: One entry per listening socket and owning process, sorted by protocol, port, family and address.
  returned: always
  type: list
  elements: dict
  contains:
    protocol:
      returned: always
      description: V(tcp) or V(udp).
      type: str
      sample: tcp
    family:
      returned: always
      description: V(ipv4) or V(ipv6).
      type: str
      sample: ipv4
    address:
      returned: always
      description: The local address the socket is bound to.
      type: str
      sample: 0.0.0.0
    port:
      returned: always
      description: The local port.
      type: int
      sample: 8765
    inode:
      returned: always
      description: The socket's inode, which ties it to the processes holding it.
      type: int
      sample: 123456
    pid:
      returned: always
      description: A process holding the socket, or null when it cannot be read.
      type: int
      sample: 4242
    name:
      returned: always
      description: The process name from C(/proc/PID/comm).
      type: str
      sample: python3
    cmdline:
      returned: always
      description: The process command line.
      type: list
      elements: str
      sample: [python3, -m, http.server, "8765"]
    unit:
      returned: always
      description: The systemd unit (service or scope) the process runs in, or null.
      type: str
      sample: sms-webhook.service
  sample:
    - protocol: tcp
      family: ipv4
      address: 0.0.0.0
      port: 8765
      inode: 123456
      pid: 4242
      name: python3
      cmdline: [python3, /usr/local/bin/sms-webhook]
      unit: sms-webhook.service
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type='int'),
            protocol=dict(type='str', choices=['tcp', 'udp']),
        ),
        supports_check_mode=True,
    )
    port = module.params['port']
    if port is not None and not 1 <= port <= 65535:
        module.fail_json(msg='port %d is out of range 1-65535' % port)

    listeners, complete = read_listeners(port=port, protocol=module.params['protocol'])
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); their sockets show pid=null.')
    module.exit_json(changed=False, listeners=listeners)


if __name__ == '__main__':
    main()
