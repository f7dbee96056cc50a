#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: reserved_ports
short_description: Keep ports out of the kernel's ephemeral range, next to the reservations of others
version_added: 0.1.0
description:
  - Adds O(ports) to C(net.ipv4.ip_local_reserved_ports), so the kernel never hands one of them out as the
    source port of an outgoing connection, which would make the bind of the service that owns it fail.
    The setting covers IPv6 too.
  - Writes it to O(path) and applies it at once through C(/proc/sys).
  - The setting is one value for the whole host, and a later sysctl file replaces an earlier one's value.
    So O(path) holds every reservation in force, the ports of others included, and records which ports this
    module added. Those, and only those, are released when they leave O(ports) or with O(state=absent).
  - Reservations of others are the ones in force now that this module did not add, and the ones other sysctl
    files set (C(/etc/sysctl.d), C(/run/sysctl.d), C(/usr/lib/sysctl.d), C(/etc/sysctl.conf) and the like).
    They are never removed.
  - Where C(/proc/sys) is read-only, as in most containers, the file is still written and a warning says the
    value was not applied.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports the file and the value it would write, and writes neither.
  diff_mode:
    support: full
    description: Returns the before and after of the file and of the value in force.
  platform:
    support: full
    platforms: posix
    description: Linux.
options:
  ports:
    description:
      - The ports to reserve, each an integer in 1-65535.
      - An empty list releases the ports this module added, like O(state=absent).
    type: list
    elements: raw
    default: []
  state:
    description:
      - V(absent) releases the ports this module added, restores the reservations of others alone and
        removes O(path).
    type: str
    choices: [present, absent]
    default: present
  path:
    description:
      - The sysctl file. Its name should sort after every other sysctl file, so its value is the one applied at boot.
      - The module refuses to overwrite or remove a file there that it did not write.
    type: path
    default: /etc/sysctl.d/99-zz-collision-guard.conf
notes:
  - The P(qwf.collision_guard.harden#role) role reserves the registered ports of the units on each host with
    this module, unless C(collision_guard_reserve_ports) is false.
"""

EXAMPLES = r"""
- name: Keep the registered ports out of the ephemeral range
  qwf.collision_guard.reserved_ports:
    ports: [8765, 8766]

- name: Release them again
  qwf.collision_guard.reserved_ports:
    state: absent
"""

RETURN = r"""
reserved:
  description: The value of C(net.ipv4.ip_local_reserved_ports) after the run (in check mode, the one it would be),
    in the kernel's format.
  returned: success
  type: str
  sample: "5514,8765-8766,40000-40010"
added:
  description: The ports of O(ports) that no one else reserves, which this module releases again.
  returned: success
  type: list
  elements: int
  sample: [5514, 8765]
applied:
  description: Whether the value in force is the one written; false where C(/proc/sys) is read-only.
  returned: success
  type: bool
  sample: true
path:
  description: The sysctl file, which exists only while there are ports to reserve.
  returned: success
  type: str
  sample: /etc/sysctl.d/99-zz-collision-guard.conf
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import read_bytes, read_text, write_atomically
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import port_problem
from ansible_collections.qwf.collision_guard.plugins.module_utils._reserved_ports import (
    DEFAULT_SYSCTL_FILE,
    PROC_PATH,
    SYSCTL_CONFIG_GLOBS,
    SYSCTL_KEY,
    format_port_list,
    reservation_plan,
)

FILE_MODE = '0644'


def checked_ports(values):
    ports, problems = set(), []
    for index, value in enumerate(values):
        port, problem = port_problem(value)
        if problem:
            problems.append('ports[%d]: %r %s' % (index, value, problem))
        else:
            ports.add(port)
    if problems:
        raise CollisionGuardError('%d bad port(s); nothing was changed' % len(problems), problems)
    return ports


def sync_file(module, path, desired):
    """Bring the sysctl file to ``desired`` (text, or None for absent). Returns its diff, or None."""
    before = read_bytes(path)
    if before == (None if desired is None else to_bytes(desired)):
        return None
    if not module.check_mode:
        try:
            if desired is None:
                os.remove(path)
            else:
                write_atomically(path, to_bytes(desired), module.atomic_move)
        except (IOError, OSError) as error:
            module.fail_json(msg='Cannot write %s: %s' % (path, to_native(error)))
    return {'before_header': path, 'after_header': path if desired is not None else '%s (removed)' % path,
            'before': to_text(before or b''), 'after': desired or ''}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ports=dict(type='list', elements='raw', default=[]),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            path=dict(type='path', default=DEFAULT_SYSCTL_FILE),
        ),
        supports_check_mode=True,
    )
    path = module.params['path']

    try:
        wanted = checked_ports(module.params['ports']) if module.params['state'] == 'present' else set()
        plan = reservation_plan(wanted, path, read_text, glob.glob, proc_path=PROC_PATH, globs=SYSCTL_CONFIG_GLOBS)
    except CollisionGuardError as error:
        module.fail_json(msg=error.full_message())
    for problem in plan['problems']:
        module.warn('Ignored, as the kernel would refuse it: %s' % problem)
    value, added, live = plan['value'], plan['added'], plan['live']
    diffs = []
    file_diff = sync_file(module, path, plan['file'])
    if file_diff:
        diffs.append(file_diff)
    # atomic_move keeps an old file's mode or applies the umask to a new one.
    mode_changed = bool(wanted) and os.path.exists(path) and module.set_mode_if_different(path, FILE_MODE, False)

    applied = value == live
    if not applied:
        if os.access(PROC_PATH, os.W_OK):
            if not module.check_mode:
                try:
                    with open(PROC_PATH, 'w') as handle:
                        handle.write(format_port_list(value) + '\n')
                except (IOError, OSError) as error:
                    module.fail_json(msg='Cannot apply %s = %s: %s' % (SYSCTL_KEY, format_port_list(value), to_native(error)))
            applied = True
            diffs.append({'before_header': SYSCTL_KEY, 'after_header': SYSCTL_KEY,
                          'before': format_port_list(live) + '\n', 'after': format_port_list(value) + '\n'})
        else:
            module.warn('%s is read-only here (a container?): %s stays %r instead of %r; %s applies it at the next '
                        'boot where /proc/sys is writable.' % (PROC_PATH, SYSCTL_KEY, format_port_list(live),
                                                               format_port_list(value), path))

    module.exit_json(changed=bool(diffs) or mode_changed, reserved=format_port_list(value if applied else live),
                     added=sorted(added), applied=applied, path=path, diff=diffs)


if __name__ == '__main__':
    main()
