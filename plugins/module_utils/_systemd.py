# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Parsing of systemctl output and of /proc/PID/cgroup."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

# Slices group units; they never own a process themselves.
_UNIT_COMPONENT = re.compile(r'^[^/]+\.(service|scope|socket|mount|swap)$')


UNIT_PROPERTIES = ('Id', 'LoadState', 'ActiveState', 'NeedDaemonReload')


def show_command(units):
    """The argv that asks systemd about each unit: does it exist, does it run, is a reload due."""
    return ['systemctl', 'show', '--property=' + ','.join(UNIT_PROPERTIES), '--'] + list(units)


def parse_unit_properties(output, units):
    """Map each requested unit to its properties, from ``show_command`` output.

    systemctl prints one block per unit, in the order asked, separated by a
    blank line. Blocks are matched by order because an alias reports the Id of
    the unit it points to.
    """
    blocks = [block for block in output.strip().split('\n\n') if block.strip()]
    if len(blocks) != len(units):
        raise CollisionGuardError('systemctl show returned %d blocks for %d units' % (len(blocks), len(units)))
    properties = {}
    for unit, block in zip(units, blocks):
        properties[unit] = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
    return properties


def present_units(properties):
    """Units that exist on the host: anything systemd could load or knows by file."""
    return set(unit for unit, props in properties.items() if props.get('LoadState', '') not in ('', 'not-found'))


def daemon_reload_due(properties):
    """Units whose files changed on disk since systemd last loaded them."""
    return sorted(unit for unit, props in properties.items() if props.get('NeedDaemonReload') == 'yes')


def unit_from_cgroup(text):
    """Return the systemd unit a process runs in, from /proc/PID/cgroup, or None.

    Inside a container with a host cgroup namespace the path reads like
    ``/docker/<id>/system.slice/foo.service``, so the innermost component that
    names a unit wins rather than assuming the path starts at a slice.
    """
    paths = {}
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if controllers == 'name=systemd':
            paths['v1'] = path
        elif hierarchy == '0' and controllers == '':
            paths['v2'] = path
    path = paths.get('v1') or paths.get('v2')
    if not path:
        return None
    for component in reversed(path.split('/')):
        if _UNIT_COMPONENT.match(component):
            return component
    return None
