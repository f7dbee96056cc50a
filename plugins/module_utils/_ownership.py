# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Who owns a port, judged from the listeners that ``_sockets`` reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import units_in_order
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import (
    LIST_SOCKETS_COMMAND,
    attribute_socket_units,
    present_units,
)

OWNED = 'owned'
SQUATTED = 'squatted'
FREE = 'free'

# Severities of port_ownership_info's findings, which check.yml judges.
OK = 'ok'
WARNING = 'warning'
CRITICAL = 'critical'
_SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, OK: 2}
HOLDER_KEYS = ('pid', 'name', 'user', 'cmdline', 'unit', 'container')


def port_owner_state(listeners, unit):
    """``owned`` when every listener belongs to ``unit``, ``squatted`` when any other holds it, else ``free``."""
    if not listeners:
        return FREE
    if all(listener['unit'] == unit for listener in listeners):
        return OWNED
    return SQUATTED


def _owned_by(listener, unit):
    """Whether a listener belongs to ``unit``: its own process, or its ``.socket`` unit (``foo.socket`` for ``foo.service``)."""
    owner = listener.get('unit') or ''
    return owner == unit or (owner.endswith('.socket') and owner[:-len('.socket')] == unit[:-len('.service')])


def _holder(listener):
    return dict((key, listener.get(key)) for key in HOLDER_KEYS)


def ownership_findings(registry, listeners, present_units):
    """The registry compared with who holds each port: findings, and the unregistered listeners.

    One finding per registry entry whose unit is on this host: ``ok`` when
    only that unit holds the port, ``critical`` when any other process
    does (``holders`` names them), ``warning`` when nothing listens on it.
    """
    by_key = {}
    for listener in listeners:
        by_key.setdefault((listener['protocol'], listener['port']), []).append(listener)
    findings = []
    for entry in registry:
        if entry['service'] not in present_units:
            continue
        held = by_key.get((entry['protocol'], entry['port']), [])
        others = [listener for listener in held if not _owned_by(listener, entry['service'])]
        if others:
            severity = CRITICAL
            holders = sorted(dict((item['pid'], _holder(item)) for item in others).values(),
                             key=lambda item: item['pid'] or 0)
            message = 'held by %s, not by %s: its next start fails' % (
                ', '.join('%s (pid %s)' % (item['unit'] or item['name'] or '?', item['pid']) for item in holders),
                entry['service'])
        elif held:
            severity, holders, message = OK, [], 'held by %s' % entry['service']
        else:
            severity, holders, message = WARNING, [], 'nothing listens on it: %s is not serving' % entry['service']
        findings.append({'port': entry['port'], 'protocol': entry['protocol'], 'service': entry['service'],
                         'severity': severity, 'holders': holders, 'message': message})
    findings.sort(key=lambda item: (_SEVERITY_ORDER[item['severity']], item['protocol'], item['port']))
    registered = set((entry['protocol'], entry['port']) for entry in registry)
    unregistered = {}
    for item in listeners:
        if (item['protocol'], item['port']) not in registered:
            unregistered[(item['protocol'], item['port'], item['pid'] or 0)] = dict(
                _holder(item), port=item['port'], protocol=item['protocol'], address=item['address'])
    return findings, [unregistered[key] for key in sorted(unregistered)]


def gather_findings(registry, unit_properties, run_systemctl, proc='/proc'):
    """This host's ``ownership_findings``, from its sockets and systemd: ``(findings, unregistered, complete)``.

    ``unit_properties(units)`` maps each unit to its systemd properties
    (``LoadState`` at least); ``run_systemctl(argv, what)`` returns what
    systemctl printed, and is asked only to name the socket units of PID 1.
    How each fails is the caller's: a module fails, the monitor carries on.
    ``complete`` is ``read_listeners``'s.
    """
    units = units_in_order(registry)
    present = present_units(unit_properties(units))
    listeners, complete = read_listeners(proc=proc)
    if any(listener['pid'] == 1 for listener in listeners):
        attribute_socket_units(listeners, run_systemctl(LIST_SOCKETS_COMMAND, 'for its socket units'))
    findings, unregistered = ownership_findings(registry, listeners, present)
    return findings, unregistered, complete


def fleet_findings(host_findings):
    """Every host's findings in one list, each with its ``host``, the worst first."""
    flat = [dict(finding, host=host) for host in sorted(host_findings) for finding in host_findings[host] or []]
    flat.sort(key=lambda item: (_SEVERITY_ORDER[item['severity']], item['host'], item['protocol'], item['port']))
    return flat


def check_table(findings):
    """One compact text table of ``fleet_findings``, a line per row, for check.yml."""
    header = ('host', 'port', 'service', 'state', 'holder')
    table = [header]
    for finding in findings:
        holder = ', '.join('%s pid %s: %s' % (item['unit'] or '-', item['pid'], ' '.join(item['cmdline'] or [])[:60])
                           for item in finding['holders']) or '-'
        table.append((finding['host'], '%d/%s' % (finding['port'], finding['protocol']), finding['service'],
                      finding['severity'].upper(), holder))
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    return ['  '.join(value.ljust(width) for value, width in zip(row, widths)).rstrip() for row in table]


def parse_host_time(text):
    """Seconds since the epoch for a host-local time as Ansible's command module reports it.

    ``str(datetime)`` omits the fraction when it is zero, so both forms occur.
    """
    for layout in ('%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S'):
        try:
            moment = datetime.datetime.strptime(text, layout)
        except ValueError:
            continue
        # A naive datetime is local time, as the command module wrote it.
        return time.mktime(moment.timetuple()) + moment.microsecond / 1e6
    raise ValueError('%r is not a time like 2026-11-27 20:54:49.123456' % (text,))
