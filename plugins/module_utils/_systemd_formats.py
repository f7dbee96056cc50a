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

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import same_address
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

# Slices group units; they never own a process themselves.
_UNIT_COMPONENT = re.compile(r'^[^/]+\.(service|scope|socket|mount|swap)$')


UNIT_PROPERTIES = ('Id', 'LoadState', 'ActiveState', 'NeedDaemonReload')
# What ownership is judged by: the canonical name, the units that are part of
# a unit and the socket units that trigger it, where its unit file comes from
# (packaged or not), and how it runs.
VIEW_PROPERTIES = ('Id', 'Names', 'LoadState', 'ActiveState', 'Type', 'ConsistsOf', 'TriggeredBy', 'Triggers',
                   'FragmentPath', 'DropInPaths', 'MainPID', 'Restart', 'NeedDaemonReload')
# What Restart= accepts (systemd.service(5)).
RESTART_VALUES = ('no', 'on-success', 'on-failure', 'on-abnormal', 'on-watchdog', 'on-abort', 'always')
# Unit files installed by packages, and units generated from packaged init scripts.
PACKAGED_UNIT_DIRS = ('/lib/systemd/system/', '/usr/lib/systemd/system/', '/run/systemd/generator')


def show_command(units, properties=UNIT_PROPERTIES):
    """The argv that asks systemd about each unit: does it exist, does it run, is a reload due."""
    return ['systemctl', 'show', '--property=' + ','.join(properties), '--'] + list(units)


def list_units_command(patterns):
    """The argv that lists the loaded service units matching globs, loaded or not running alike."""
    return ['systemctl', 'list-units', '--all', '--full', '--plain', '--no-legend', '--no-pager',
            '--type=service', '--'] + list(patterns)


def parse_list_units(output):
    """Unit names from ``list_units_command`` output, one a line, the name first."""
    names = []
    for line in output.splitlines():
        fields = line.split()
        # Older systemd marks failed units with a bullet even in --plain mode.
        if fields and fields[0] in ('*', '\u25cf'):
            fields = fields[1:]
        if fields and fields[0] not in names:
            names.append(fields[0])
    return names


def is_packaged(fragment_path):
    """Whether a unit file comes from a package (or a packaged init script), not from an operator or agent."""
    return bool(fragment_path) and fragment_path.startswith(PACKAGED_UNIT_DIRS)


def restart_setting(texts):
    """The ``Restart=`` a unit gets from its files, read in systemd's order (unit file, then drop-ins); '' when unset."""
    value = ''
    for text in texts:
        section = None
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith('[') and line.endswith(']'):
                section = line[1:-1]
            elif section == 'Service' and '=' in line and not line.startswith(('#', ';')):
                # systemd allows blanks around "=" ("Restart = always"), and
                # ignores a value it cannot parse (there are no trailing
                # comments), keeping the one before.
                key, setting = line.split('=', 1)
                if key.strip() == 'Restart' and setting.strip() in ('',) + RESTART_VALUES:
                    value = setting.strip()
    return value


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


def cgroup_path(text):
    """The systemd cgroup path from /proc/PID/cgroup text: the name=systemd (v1) or unified (v2) line."""
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
    return paths.get('v1') or paths.get('v2') or ''


def strip_cgroup_root(path, root):
    """Drop the prefix the host puts before a container's own cgroup tree.

    In a container sharing the host's cgroup namespace, every path starts
    with something like ``/docker/<id>``; PID 1's path tells what it is.
    """
    if not root or root == '/':
        return path
    if path == root:
        return '/'
    if path.startswith(root + '/'):
        return path[len(root):]
    return path


def _unescape(component):
    """A cgroup path component as the unit name systemd escaped (``__relay.service`` -> ``_relay.service``)."""
    return component[1:] if component.startswith('_') else component


def _units_in(path):
    return [_unescape(component) for component in path.split('/')
            if _UNIT_COMPONENT.match(_unescape(component))]


_USER_MANAGER = re.compile(r'^user@\d+\.service$')


def unit_from_cgroup(path):
    """Return the systemd unit of a cgroup path, or None.

    As systemd does: the outermost component that names a unit (slices
    skipped), so whatever a delegated subtree holds (a container, a CI
    runner's own cgroups named like units) belongs to the unit that
    delegated it. Under a user's service manager the user's own unit is
    returned; ``manager_from_cgroup`` names that manager.
    """
    units = _units_in(path)
    if not units:
        return None
    if _USER_MANAGER.match(units[0]) and len(units) > 1:
        return units[1]
    return units[0]


def manager_from_cgroup(path):
    """``user@1000.service`` when a process runs under a user's own service manager, else None.

    Units of a user manager carry names of their own choosing, so a user can
    name one after a system unit; it is never that system unit.
    """
    units = _units_in(path)
    if len(units) > 1 and _USER_MANAGER.match(units[0]):
        return units[0]
    return None


_CONTAINER_SCOPE = re.compile(r'^(?:docker|libpod|cri-containerd|crio)-([0-9a-f]{12,64})\.scope$')
_CONTAINER_ID = re.compile(r'^[0-9a-f]{64}$')


def container_from_cgroup(path):
    """The id of the container a cgroup path belongs to (docker, podman, containerd, CRI-O), or None."""
    for component in path.split('/'):
        match = _CONTAINER_SCOPE.match(component)
        if match:
            return match.group(1)
        if _CONTAINER_ID.match(component):
            return component
    return None


LIST_SOCKETS_COMMAND = ['systemctl', 'list-sockets', '--all', '--full', '--show-types', '--no-legend', '--no-pager']
_LISTEN = re.compile(r'^(?:\[(?P<v6>[^\]]+)\]|(?P<v4>[^:\[\]]+)):(?P<port>\d+)$')
_SOCKET_TYPES = {'Stream': 'tcp', 'Datagram': 'udp'}


def socket_units_by_port(output):
    """Map (protocol, port) -> socket units, from ``LIST_SOCKETS_COMMAND`` output.

    PID 1 holds the listening socket of every socket-activated service, so
    only this map can say which unit such a port belongs to.
    """
    units = {}
    for dummy_address, protocol, port, unit in _socket_lines(output):
        if unit not in units.setdefault((protocol, port), []):
            units[(protocol, port)].append(unit)
    return units


def _socket_lines(output):
    """(address, protocol, port, unit) of each inet line of ``LIST_SOCKETS_COMMAND`` output."""
    found = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        listen, kind, unit = fields[0], fields[1], fields[2]
        match = _LISTEN.match(listen)
        if not match or kind not in _SOCKET_TYPES or not unit.endswith('.socket'):
            continue
        found.append((match.group('v6') or match.group('v4'), _SOCKET_TYPES[kind], int(match.group('port')), unit))
    return found


def attribute_socket_units(listeners, list_sockets_output):
    """Name the ``.socket`` unit of each socket PID 1 holds, from ``LIST_SOCKETS_COMMAND`` output.

    Matched by address, protocol and port, since socket units may share a
    port on separate addresses. Changes ``listeners`` in place; a socket
    that several units claim, or none, stays unnamed.
    """
    lines = _socket_lines(list_sockets_output)
    for listener in listeners:
        if listener['pid'] == 1:
            candidates = sorted(set(unit for address, protocol, port, unit in lines
                                    if (protocol, port) == (listener['protocol'], listener['port'])
                                    and _same_address(address, listener['address'])))
            if len(candidates) == 1:
                listener['unit'] = candidates[0]


def _same_address(listed, bound):
    """Whether list-sockets' address (``*`` for any) is the one the kernel reports a socket bound to."""
    if listed == '*':
        return bound in ('0.0.0.0', '::')
    return same_address(listed, bound)
