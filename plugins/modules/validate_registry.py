#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: validate_registry
short_description: Check a port registry on the controller before any host changes
version_added: 0.1.0
description:
  - Validates O(registry), the collection's port registry C(collision_guard_registry), on the controller.
  - Lists every bad entry in one message, each with its index and the value that is wrong.
  - Ports must be integers in 1-65535, services valid systemd C(.service) unit names or globs of them,
    protocols C(tcp) or C(udp), addresses IP literals, and one port and protocol may belong to one service only
    on colliding addresses.
  - Returns the registry normalised, ready for the modules that act on hosts.
  - This is an action plugin; it never contacts the target host.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.attributes.controller
options:
  registry:
    description:
      - The registry, a list of mappings with the keys C(port), C(service), C(protocol), C(address), C(restart),
        C(evict_holders) and C(notes).
      - C(port) and C(service) are required; C(protocol) defaults to C(tcp).
      - A C(service) without a unit type suffix gets C(.service) appended, as C(systemctl) does. It may be an alias,
        resolved on each host, or a glob with C(*) and C(?) that must fit one loaded unit on each host.
      - A name that ends in a unit type in another case, such as C(foo.SERVICE), is refused. systemd knows its
        types in lowercase only and would read it as C(foo.SERVICE.service). A unit really named so is written in full.
      - A C(service) that is not a glob has at most 253 characters, so that its drop-in directory fits in a file name.
      - C(address) is the IPv4 or IPv6 address the service binds. Without it, the entry claims the port on every
        address. Two entries on one port collide unless their addresses can both be bound.
      - C(restart) is a C(Restart=) value for this service that wins over the role's C(collision_guard_restart).
        All entries of one service must agree on it.
      - C(evict_holders) lists units that may hold the port when harden arms the entry, such as a packaged
        service the operator means to evict. Harden refuses an entry whose port another unit holds, unless it
        is listed here.
      - C(port) is an integer, or a string of digits. Booleans are refused.
      - C(notes) is free text. Tabs and newlines are allowed. Other control characters, line separators and
        bidirectional overrides are refused, because the notes are written into C(PORTS.md) and the registry docs.
      - Ports below 1024 and ports in the default ephemeral range, 32768-60999, are legal but draw a warning.
    type: raw
    required: true
  source:
    description:
      - Name of the variable the registry came from, used to say where a bad value is.
    type: str
    default: collision_guard_registry
  both_protocols:
    description:
      - Whether one unit registered for the same port under both C(tcp) and C(udp) is allowed (as DNS does) or an error.
    type: str
    choices: [allow, error]
    default: allow
  never_evict:
    description:
      - The role's C(collision_guard_never_evict), checked here too, so a bad glob stops the play before any host.
    type: list
    elements: str
    default: [ssh.service, sshd.service, ssh.socket, sshd.socket, ssh@*.service, systemd-*, dbus.service,
              dbus.socket, dbus-broker.service, init.scope, user@*.service, getty@*.service, serial-getty@*.service]
  prevent_in:
    description:
      - The role's C(collision_guard_prevent_in), checked here too when given. Slice or service unit names, never
        the root slice C(-.slice).
    type: list
    elements: str
  sqlite:
    description:
      - The role's C(collision_guard_sqlite), checked here too when given, so a bad entry stops the play before any
        host. A list of C({path, journal_mode}), each C(path) absolute and listed once, each C(journal_mode) V(wal) or
        V(delete).
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Validate the registry once, before any host is touched
  qwf.collision_guard.validate_registry:
    registry: "{{ collision_guard_registry }}"
  run_once: true
  register: collision_guard_validated
"""

RETURN = r"""
registry:
  description:
    - The registry, normalised. Every entry has C(port), C(service), C(protocol), C(address) (null for every
      address), C(restart) (empty for the role's), C(evict_holders), C(private_tmp), C(pid_files) and C(notes).
    - Entries of one service on the same port, protocol and address appear once, with their C(evict_holders) merged.
  returned: success
  type: list
  elements: dict
  sample:
    - port: 8765
      service: sms-webhook.service
      protocol: tcp
      address: null
      restart: ""
      evict_holders: []
      private_tmp: false
      pid_files: []
      notes: Twilio inbound
sqlite:
  description: The databases of O(sqlite), normalised, with C(journal_mode) defaulted to V(wal); empty without O(sqlite).
  returned: success
  type: list
  elements: dict
  sample:
    - path: /srv/app/data/app.db
      journal_mode: wal
problems:
  description: One line per bad value, naming the entry and the value.
  returned: failure
  type: list
  elements: str
  sample:
    - "collision_guard_registry[1].port: 70000 is out of range 1-65535"
"""
