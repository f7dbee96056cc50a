#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: port_usage_info
short_description: List listening sockets with the process, user, systemd unit and container that own them
version_added: 0.1.0
description:
  - Returns every TCP socket in LISTEN and every bound, unconnected UDP socket, IPv4 and IPv6,
    in the host's network namespace, one entry per socket and owning process.
  - Each entry names the owner's pid, parent, user, command line, executable, systemd unit and container.
    The unit comes from C(/proc/PID/cgroup), cgroup v1 and v2 alike, also inside containers.
    Where PID 1 holds a socket, the unit is the C(.socket) unit that listens on it.
  - Sockets come from the kernel's sock_diag netlink interface, as C(ss) reads them, with
    C(/proc/net) as the fallback. It runs no C(ss), C(netstat) or C(ps).
  - Compared with M(community.general.listen_ports_facts), IPv6 stays IPv6, C(dual_stack) says
    whether a C([::]) socket also takes IPv4, and the owner's unit and container are named.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.info_module
options:
  port:
    description:
      - Return only sockets on this local port.
    type: int
  protocol:
    description:
      - Return only sockets of this protocol.
    type: str
    choices: [tcp, udp]
  include_non_listening:
    description:
      - Also return TCP sockets in every other state and connected UDP sockets, as
        M(community.general.listen_ports_facts) does with the same option.
    type: bool
    default: false
notes:
  - Without root, the sockets of other users' processes are still listed, with C(pid=null), and a warning says why.
    In a container, root also needs C(CAP_SYS_PTRACE) to see other users' processes.
  - For a C(docker-proxy) owner (a port Docker publishes), C(container) is the container that owns the address
    the proxy forwards to.
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

- name: Every listener owned by a container
  qwf.collision_guard.port_usage_info:
  register: usage

- name: Show them
  ansible.builtin.debug:
    msg: "{{ usage.listeners | selectattr('container') | map(attribute='port') | list }}"
"""

RETURN = r"""
listeners:
  description: One entry per socket and owning process, sorted by protocol, port, family and address.
  returned: always
  type: list
  elements: dict
  contains:
    protocol:
      description: V(tcp) or V(udp).
      returned: always
      type: str
      sample: tcp
    family:
      description: V(ipv4) or V(ipv6). IPv6 sockets stay IPv6, including C(::).
      returned: always
      type: str
      sample: ipv6
    address:
      description: The local address the socket is bound to.
      returned: always
      type: str
      sample: "::"
    port:
      description: The local port.
      returned: always
      type: int
      sample: 8765
    state:
      description: The socket state as C(ss) names it, V(LISTEN) or V(UNCONN) for listeners.
      returned: always
      type: str
      sample: LISTEN
    remote_address:
      description: The peer's address; the wildcard address for listeners.
      returned: always
      type: str
      sample: "::"
    remote_port:
      description: The peer's port; 0 for listeners.
      returned: always
      type: int
      sample: 0
    inode:
      description: The socket's inode, which ties it to the processes holding it.
      returned: always
      type: int
      sample: 123456
    uid:
      description: The uid that created the socket.
      returned: always
      type: int
      sample: 0
    v6only:
      description: Whether an IPv6 socket has IPV6_V6ONLY set; null for IPv4, or when read from C(/proc/net).
      returned: always
      type: bool
      sample: false
    dual_stack:
      description: True where a C([::]) socket also accepts IPv4; null when it cannot be known.
      returned: always
      type: bool
      sample: true
    pid:
      description: A process holding the socket, or null when it cannot be read.
      returned: always
      type: int
      sample: 4242
    ppid:
      description: The parent of that process.
      returned: always
      type: int
      sample: 1
    session:
      description: The process's session id, which groups the processes of one login or one daemon.
      returned: always
      type: int
      sample: 4242
    name:
      description: The process name from C(/proc/PID/comm).
      returned: always
      type: str
      sample: python3
    user:
      description: The user the process runs as.
      returned: always
      type: str
      sample: nobody
    cmdline:
      description: The process command line.
      returned: always
      type: list
      elements: str
      sample: [python3, -m, http.server, "8765"]
    exe:
      description: The process executable, or null when it cannot be read.
      returned: always
      type: str
      sample: /usr/bin/python3.11
    unit:
      description: The systemd unit the process runs in (service or scope), the C(.socket) unit for sockets
        PID 1 holds, or null.
      returned: always
      type: str
      sample: sms-webhook.service
    container:
      description: The id of the container the process runs in (docker, podman, containerd, CRI-O), or, for
        C(docker-proxy), the container it forwards to; null otherwise.
      returned: always
      type: str
      sample: null
  sample:
    - protocol: tcp
      family: ipv4
      address: 0.0.0.0
      port: 8765
      state: LISTEN
      remote_address: 0.0.0.0
      remote_port: 0
      inode: 123456
      uid: 0
      v6only: null
      dual_stack: false
      pid: 4242
      ppid: 1
      session: 4242
      name: python3
      user: root
      cmdline: [python3, /usr/local/bin/sms-webhook]
      exe: /usr/bin/python3.11
      unit: sms-webhook.service
      container: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import (
    LIST_SOCKETS_COMMAND,
    attribute_socket_units,
)


def name_socket_units(module, listeners):
    """Attribute sockets held by PID 1 to the .socket unit listening on their port."""
    systemctl = module.get_bin_path('systemctl')
    if not systemctl or not any(listener['pid'] == 1 for listener in listeners):
        return
    rc, out, err = module.run_command([systemctl] + LIST_SOCKETS_COMMAND[1:])
    if rc != 0:
        module.warn('Cannot list socket units, so sockets held by PID 1 name no unit: %s' % err.strip())
        return
    attribute_socket_units(listeners, out)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            port=dict(type='int'),
            protocol=dict(type='str', choices=['tcp', 'udp']),
            include_non_listening=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    port = module.params['port']
    if port is not None and not 1 <= port <= 65535:
        module.fail_json(msg='Cannot list port %d: it is out of range 1-65535' % port)

    try:
        listeners, complete = read_listeners(port=port, protocol=module.params['protocol'],
                                             include_non_listening=module.params['include_non_listening'])
    except (IOError, OSError) as error:
        module.fail_json(msg='Cannot read the sockets of this host: %s' % error)
    name_socket_units(module, listeners)
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); their sockets show pid=null.')
    module.exit_json(changed=False, listeners=listeners)


if __name__ == '__main__':
    main()
