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

import os
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


def configured_elsewhere(own_path, read_text, globber, globs=SYSCTL_CONFIG_GLOBS):
    """The ports other sysctl files reserve, and a line per value there the kernel would refuse.

    ``read_text(path)`` and ``globber(pattern)`` read the host; ``own_path`` is the collection's file, left out.
    """
    ports, problems = set(), []
    own = os.path.realpath(own_path)
    for pattern in globs:
        for path in sorted(globber(pattern)):
            if os.path.realpath(path) == own:
                continue
            found, bad = configured_reservations(read_text(path) or '', path)
            ports |= found
            problems.extend(bad)
    return ports, problems


def reservation_plan(wanted, path, read_text, globber, proc_path=PROC_PATH, globs=SYSCTL_CONFIG_GLOBS):
    """What ``reserved_ports`` would do on this host: one decision for the module and for harden's plan.

    Returns a dict: ``value`` (the set to apply), ``added`` (the collection's share), ``live`` (the set in
    force), ``file`` (the sysctl file's text wanted, None for none), ``file_current`` (whether the file
    already holds it) and ``problems`` (values in other files the kernel would refuse). Raises
    CollisionGuardError for an unreadable /proc value or a file at ``path`` the collection did not write.
    """
    live_text = read_text(proc_path)
    if live_text is None:
        raise CollisionGuardError('Cannot read %s: this host has no %s to set' % (proc_path, SYSCTL_KEY))
    existing = read_text(path)
    previously_added = parse_managed_file(existing, path) if existing is not None else set()
    live = parse_port_list(live_text.strip(), proc_path)
    elsewhere, problems = configured_elsewhere(path, read_text, globber, globs)
    value, added = plan_reservation(live, elsewhere, previously_added, wanted)
    wanted_file = render_sysctl_file(value, added) if wanted else None
    return {'value': value, 'added': added, 'live': set(live), 'file': wanted_file,
            'file_current': existing == wanted_file, 'problems': problems}
