#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: unit_guard
short_description: Write port-cleanup drop-ins for the registered services present on a host
version_added: 0.1.0
description:
  - For each service in O(registry) that exists on the host, writes
    C(/etc/systemd/system/<unit>.d/port-cleanup.conf). Its C(ExecStartPre) frees the
    service's registered ports before every start, so a process squatting on a port
    cannot make the start fail.
  - Entries whose unit does not exist on the host are returned in RV(absent); that is not an error.
  - Writes a file only when its content differs, atomically, with mode C(0644).
  - Does not run C(systemctl daemon-reload); run it when RV(daemon_reload) is true.
  - Validates O(registry) itself, but use M(qwf.collision_guard.validate_registry) on the controller first,
    so a bad registry stops the play before any host is touched.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports exactly the files it would write, and writes none.
  diff_mode:
    support: full
    description: Returns the before and after of every drop-in it writes.
  platform:
    support: full
    platforms: posix
    description: Needs systemd and C(systemctl) on the host.
options:
  registry:
    description:
      - The registry, preferably as returned by M(qwf.collision_guard.validate_registry).
    type: list
    elements: dict
    required: true
  cleanup_method:
    description:
      - How the drop-in frees a port.
      - V(fuser) runs C(fuser --kill --namespace PROTOCOL PORT) as root (the C(+) prefix), which sends
        SIGKILL to every process using the port. It needs the C(psmisc) package.
    type: str
    choices: [fuser]
    default: fuser
  unit_dir:
    description:
      - Directory holding the units' drop-in directories.
    type: path
    default: /etc/systemd/system
notes:
  - The first line of every file written is a marker naming this collection, so the collection can find its own files.
  - The drop-in uses a command name without a path, which needs systemd 239 or newer.
seealso:
  - name: systemd.unit(5)
    description: Drop-in directories and how systemd merges them.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html
"""

EXAMPLES = r"""
- name: Validate the registry on the controller
  qwf.collision_guard.validate_registry:
    registry: "{{ collision_guard_registry }}"
  run_once: true
  register: validated

- name: Write port-cleanup drop-ins
  qwf.collision_guard.unit_guard:
    registry: "{{ validated.registry }}"
  register: guard

- name: Reload systemd when a drop-in changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: guard is changed
"""

RETURN = r"""
protected:
  description: The units present on the host, with their drop-in, their systemd states and whether the drop-in changed.
  returned: success
  type: list
  elements: dict
  sample:
    - service: sms-webhook.service
      path: /etc/systemd/system/sms-webhook.service.d/port-cleanup.conf
      ports: ["8765/tcp"]
      load_state: loaded
      active_state: active
      changed: true
daemon_reload:
  description: Whether systemd must reload its units, because a drop-in changed now or a unit's files changed since the last reload.
  returned: success
  type: bool
  sample: true
fuser_found:
  description: Whether C(fuser), which the drop-ins call, is installed on the host.
  returned: success
  type: bool
  sample: true
absent:
  description: Registry entries whose unit does not exist on this host. They are left alone.
  returned: success
  type: list
  elements: dict
  sample:
    - port: 9100
      service: billing-worker.service
      protocol: tcp
      notes: ""
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import (
    CLEANUP_METHODS,
    is_managed,
    plan_port_cleanup,
    units_in_order,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import (
    daemon_reload_due,
    parse_unit_properties,
    present_units,
    show_command,
)

DROPIN_MODE = '0644'


def read_bytes(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_atomically(module, path, content):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix='.collision-guard-')
    with os.fdopen(fd, 'wb') as handle:
        handle.write(content)
    module.atomic_move(temp_path, path)


def unit_properties(module, units):
    if not units:
        return {}
    argv = show_command(units)
    argv[0] = module.get_bin_path('systemctl', required=True)
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg='Cannot ask systemd which units exist: systemctl show exited %d: %s' % (rc, err.strip()))
    return parse_unit_properties(out, units)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type='list', elements='dict', required=True),
            cleanup_method=dict(type='str', choices=list(CLEANUP_METHODS), default='fuser'),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
        ),
        supports_check_mode=True,
    )

    try:
        # Validated again here: this module writes root-owned unit files, so
        # it trusts no caller, and normalised input passes unchanged.
        registry = validate_registry(module.params['registry'], where='registry')
        properties = unit_properties(module, units_in_order(registry))
        present = present_units(properties)
        dropins, absent = plan_port_cleanup(registry, present, module.params['cleanup_method'], module.params['unit_dir'])
    except CollisionGuardError as error:
        module.fail_json(msg='Cannot plan the port-cleanup drop-ins: %s' % error.full_message())

    protected = []
    diffs = []
    any_changed = False
    for path, dropin in dropins.items():
        desired = to_bytes(dropin['content'])
        before = read_bytes(path)
        content_changed = before != desired
        if content_changed:
            if before is not None and not is_managed(to_text(before, errors='surrogate_or_replace')):
                module.warn('%s was not written by qwf.collision_guard; it is replaced.' % path)
            diffs.append({'before_header': path, 'after_header': path,
                          'before': to_text(before or b'', errors='surrogate_or_replace'), 'after': dropin['content']})
            if not module.check_mode:
                try:
                    write_atomically(module, path, desired)
                except (IOError, OSError) as error:
                    module.fail_json(msg='Cannot write %s: %s' % (path, to_native(error)))
        # atomic_move keeps an old file's mode or applies the umask to a new
        # one, so the mode is enforced separately (check mode aware).
        mode_changed = module.set_mode_if_different(path, DROPIN_MODE, False) if os.path.exists(path) else False
        changed = content_changed or mode_changed
        any_changed = any_changed or changed
        props = properties[dropin['unit']]
        protected.append({
            'service': dropin['unit'],
            'path': path,
            'ports': ['%d/%s' % (entry['port'], entry['protocol'])
                      for entry in registry if entry['service'] == dropin['unit']],
            'load_state': props.get('LoadState'),
            'active_state': props.get('ActiveState'),
            'changed': changed,
        })

    # A reload can be due although no byte changes now: an earlier run that
    # wrote files may have failed before its reload.
    reload_due = bool(diffs) or bool(daemon_reload_due(dict((unit, properties[unit]) for unit in present)))

    module.exit_json(
        changed=any_changed or reload_due,
        daemon_reload=reload_due,
        protected=protected,
        absent=absent,
        fuser_found=module.get_bin_path('fuser') is not None,
        diff=diffs,
    )


if __name__ == '__main__':
    main()
