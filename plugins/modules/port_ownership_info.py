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
  - V(ok) when only the registered unit holds it (its own process, or its C(.socket) unit, named after it);
    V(critical) when any other process holds it, naming that process; V(warning) when nothing listens on it.
  - Also lists the listeners on ports the registry does not name, for information.
  - Reads the sockets and their owners the same way as M(qwf.collision_guard.port_usage_info).
    The playbook C(qwf.collision_guard.check) runs it across a fleet.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.info_module
  - qwf.collision_guard.registry
attributes:
  platform:
    support: full
    platforms: posix
    description: Linux with C(/proc) and systemd; root to see other users' processes.
notes:
  - A critical finding means the registered unit's next start fails unless its C(port-cleanup.conf) evicts the holder.
seealso:
  - module: qwf.collision_guard.port_usage_info
"""

EXAMPLES = r"""
- name: Check who holds the registered ports
  qwf.collision_guard.port_ownership_info:
    registry: "{{ collision_guard_registry }}"
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
    service:
      description: The registered unit.
      type: str
      returned: always
      sample: sms-webhook.service
    severity:
      description: V(ok), V(warning) (nothing listens) or V(critical) (another process holds it).
      type: str
      returned: always
      sample: critical
    holders:
      description: The processes other than the registered unit that hold the port, with pid, name, user, cmdline,
        unit and container. Empty unless critical.
      type: list
      elements: dict
      returned: always
      sample: [{pid: 4242, name: python3, user: root, cmdline: [python3, -m, http.server, "8765"],
                unit: session-7.scope, container: null}]
    message:
      description: The finding in words.
      type: str
      returned: always
      sample: "held by session-7.scope (pid 4242), not by sms-webhook.service: its next start fails"
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
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import gather_findings
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import ask_systemd, unit_properties


def main():
    module = AnsibleModule(
        argument_spec=dict(registry=dict(type='list', elements='dict', required=True)),
        supports_check_mode=True,
    )
    try:
        registry = validate_registry(module.params['registry'], where='registry')
        findings, unregistered, complete = gather_findings(
            registry,
            lambda units: unit_properties(module, units),
            lambda argv, what: ask_systemd(module, argv, what))
    except CollisionGuardError as error:
        module.fail_json(msg='Cannot check port ownership: %s' % error.full_message())
    except (IOError, OSError) as error:
        module.fail_json(msg='Cannot read the sockets of this host: %s' % error)
    if not complete:
        module.warn('Some processes could not be inspected (run as root to see them); '
                    'a port they hold may be reported without its holder.')
    module.exit_json(changed=False, findings=findings, unregistered=unregistered)


if __name__ == '__main__':
    main()
