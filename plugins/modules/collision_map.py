#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: collision_map
short_description: Build the fleet's collision map from the discovery results of its hosts
version_added: 0.1.0
description:
  - Turns each host's M(qwf.collision_guard.port_usage_info), M(qwf.collision_guard.port_ownership_info) and
    M(qwf.collision_guard.file_usage_info) results into rows of Resource, Type, Owner, Port/Path, Risk and Protection,
    sorted by risk.
  - Registered ports are judged on each host by M(qwf.collision_guard.port_ownership_info), so the map follows the
    ownership rules of every other part of the collection.
  - Returns the map as Markdown (per host, then fleet-wide) and JSON, and a proposed C(collision_guard_registry)
    built from the listeners that systemd services own. A service bound to specific addresses, not a wildcard,
    gets an entry per address. The same input gives the same bytes.
  - This is an action plugin; it runs on the controller and contacts no host. C(qwf.collision_guard.audit) writes
    its results to files.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.controller
options:
  hosts:
    description:
      - Maps each host name to its results, with the keys C(listeners) (from port_usage_info), C(ownership)
        (the C(findings) and C(unregistered) of port_ownership_info), C(findings) (from file_usage_info) and
        C(protected) (from guard_dropins in check mode).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Build the map from what each host found
  qwf.collision_guard.collision_map:
    hosts: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'collision_guard_found'))) }}"
  run_once: true
  register: collision_map
"""

RETURN = r"""
rows:
  description: The map's rows, sorted by risk, then host, type and place.
  returned: always
  type: list
  elements: dict
  sample:
    - {host: web1, resource: sms-webhook.service, type: port, owner: collision-guard-squatter-8765-tcp.service,
       where: "8765/tcp on 0.0.0.0", port: 8765, protocol: tcp, risk: critical,
       reason: "registered to sms-webhook.service but held by collision-guard-squatter-8765-tcp.service",
       protection: none}
markdown:
  description: The map as Markdown tables, per host then fleet-wide.
  returned: always
  type: str
  sample: "# Collision map\n..."
json:
  description: The rows as JSON text.
  returned: always
  type: str
  sample: '{"rows": []}'
registry_draft:
  description: A proposed C(collision_guard_registry) in YAML, ready to review and paste.
  returned: always
  type: str
  sample: "---\ncollision_guard_registry:\n  - port: 8765\n    service: sms-webhook.service\n"
"""
