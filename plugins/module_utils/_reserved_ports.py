# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Reserved ports: keeping registered ports out of the ephemeral range.

``net.ipv4.ip_local_reserved_ports`` is one value for the whole host, and a
later sysctl file replaces an earlier one's value instead of adding to it.
So the collection's file sorts last and holds every reservation in force,
and records which ports it added itself: those, and only those, go again
when the registry shrinks or the collection is removed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import port_problem

SYSCTL_KEY = 'net.ipv4.ip_local_reserved_ports'
PROC_PATH = '/proc/sys/net/ipv4/ip_local_reserved_ports'
# After Debian's 99-sysctl.conf, so no file of the usual names comes later.
DEFAULT_SYSCTL_FILE = '/etc/sysctl.d/99-zz-collision-guard.conf'
# Where systemd-sysctl and sysctl --system read settings.
SYSCTL_CONFIG_GLOBS = (
    '/etc/sysctl.d/*.conf',
    '/run/sysctl.d/*.conf',
    '/usr/local/lib/sysctl.d/*.conf',
    '/usr/lib/sysctl.d/*.conf',
    '/lib/sysctl.d/*.conf',
    '/etc/sysctl.conf',
)
MANAGED_HEADER = '# Managed by qwf.collision_guard; local edits are overwritten.'
ADDED_PREFIX = '# Added by qwf.collision_guard: '

_ITEM = re.compile(r'^([0-9]+)(?:-([0-9]+))?$')


def parse_port_list(text, where):
    """``5514,8765-8766`` (the kernel's format) -> {5514, 8765, 8766}."""
    ports = set()
    for item in re.sub(r'\s', '', text).split(','):
        if not item:
            continue
        match = _ITEM.match(item)
        if not match:
            raise CollisionGuardError('%s: %r is not a port or a range of ports' % (where, item))
        bounds = []
        for bound in (match.group(1), match.group(2) or match.group(1)):
            port, problem = port_problem(bound)
            if problem:
                raise CollisionGuardError('%s: %s in %r %s' % (where, bound, item, problem))
            bounds.append(port)
        first, last = bounds
        if first > last:
            raise CollisionGuardError('%s: %r is a range that ends before it starts' % (where, item))
        ports.update(range(first, last + 1))
    return ports


def format_port_list(ports):
    """{5514, 8765, 8766} -> ``5514,8765-8766``, as the kernel prints it."""
    items = []
    for port in sorted(ports):
        if items and items[-1][1] == port - 1:
            items[-1][1] = port
        else:
            items.append([port, port])
    return ','.join('%d' % first if first == last else '%d-%d' % (first, last) for first, last in items)


def configured_reservations(text, where):
    """Every port a sysctl config file reserves, and a problem line per value the kernel would refuse."""
    ports, problems = set(), []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line[0] in '#;' or '=' not in line:
            continue
        key, value = line.split('=', 1)
        if key.strip().lstrip('-').replace('/', '.') != SYSCTL_KEY:
            continue
        try:
            ports.update(parse_port_list(value.strip(), '%s line %d' % (where, number)))
        except CollisionGuardError as error:
            problems.append(str(error))
    return ports, problems


def parse_managed_file(text, where):
    """The ports the collection's file says it added; CollisionGuardError when the file is someone else's."""
    lines = text.splitlines()
    if not lines or lines[0] != MANAGED_HEADER:
        raise CollisionGuardError('%s exists and was not written by qwf.collision_guard; move it away, '
                                  'the collection will not overwrite it' % where)
    for line in lines:
        if line.startswith(ADDED_PREFIX):
            added = line[len(ADDED_PREFIX):]
            return set() if added == 'none' else parse_port_list(added, where)
    return set()


def plan_reservation(live, configured_elsewhere, previously_added, wanted):
    """Return (value to apply, ports the collection adds) for the wanted ports.

    Others' reservations are what is in force now minus what the collection
    added last time, plus what other sysctl files ask for; they are kept
    whatever is wanted, so an empty ``wanted`` restores them alone.
    """
    others = (set(live) - set(previously_added)) | set(configured_elsewhere)
    return others | set(wanted), set(wanted) - others


def render_sysctl_file(value, added):
    """The collection's sysctl file: the whole value, and which ports of it are the collection's."""
    return '\n'.join([
        MANAGED_HEADER,
        '# Keeps the registered ports of this host out of the ephemeral range. A later',
        '# sysctl file replaces an earlier value, so this one holds every reservation.',
        ADDED_PREFIX + (format_port_list(added) or 'none'),
        '%s = %s' % (SYSCTL_KEY, format_port_list(value)),
        '',
    ])
