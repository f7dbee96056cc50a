# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""The collision map: what each host shares, who owns it, the risk and the protection.

Pure functions from the discovery modules' results to rows, and from rows
to the three files the audit writes. Same input, same bytes out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

RISK_ORDER = {'critical': 0, 'medium': 1, 'low': 2}
TYPE_LABELS = {
    'port': 'port', 'sqlite': 'SQLite database', 'lock': 'lock file', 'pidfile': 'PID file',
    'shared-temp': 'shared temp path', 'shared-file': 'shared file',
}
COLUMNS = ('Resource', 'Type', 'Owner', 'Port/Path', 'Risk', 'Protection')
# Units the drill and the system run that a registry should not claim.
_TRANSIENT_PREFIXES = ('run-', 'collision-guard-squatter-')


def _owner_label(listener):
    return listener.get('unit') or '%s (pid %s)' % (listener.get('name') or '?', listener.get('pid'))


def port_rows(host, listeners, registry, protected):
    """One row per (protocol, port) a host listens on, plus registered ports nobody holds."""
    present = dict((item['service'], item) for item in protected)
    by_key = {}
    for listener in listeners:
        by_key.setdefault((listener['protocol'], listener['port']), []).append(listener)
    registered = dict(((entry['protocol'], entry['port']), entry) for entry in registry)

    rows = []
    for (protocol, port), holders in by_key.items():
        owners = sorted(set(_owner_label(holder) for holder in holders))
        addresses = sorted(set(('[%s]' % h['address']) if h['family'] == 'ipv6' else h['address'] for h in holders))
        entry = registered.get((protocol, port))
        socket_unit = all(owner.endswith('.socket') for owner in owners)
        guarded = entry is not None and entry['service'] in present and not present[entry['service']]['changed']
        if entry is not None and owners == [entry['service']]:
            risk = 'low' if guarded else 'medium'
            reason = ('registered owner holds it' if guarded else
                      'registered owner holds it, but harden has not protected it on this host')
        elif entry is not None:
            risk = 'critical'
            reason = ('registered to %s but held by %s: the next start of %s fails'
                      % (entry['service'], ', '.join(owners), entry['service']))
        elif socket_unit:
            risk, reason = 'low', 'held by systemd for a socket unit'
        elif all(owner.endswith('.service') for owner in owners):
            risk, reason = 'medium', 'no registered owner: anything can take it while the service is down'
        else:
            risk, reason = 'medium', 'held by an ad-hoc process (a session, a script or an agent), not a service'
        if guarded:
            protection = 'port-cleanup drop-in'
        elif socket_unit:
            protection = 'socket unit'
        else:
            protection = 'none'
        rows.append({
            'host': host, 'resource': entry['service'] if entry else ', '.join(owners), 'type': 'port',
            'owner': ', '.join(owners), 'where': '%d/%s on %s' % (port, protocol, ', '.join(addresses)),
            'port': port, 'protocol': protocol, 'risk': risk, 'reason': reason, 'protection': protection,
        })

    for (protocol, port), entry in registered.items():
        if (protocol, port) in by_key or entry['service'] not in present:
            continue
        rows.append({
            'host': host, 'resource': entry['service'], 'type': 'port', 'owner': '-',
            'where': '%d/%s' % (port, protocol), 'port': port, 'protocol': protocol, 'risk': 'medium',
            'reason': 'registered and present, but nothing listens: the service is down',
            'protection': 'port-cleanup drop-in' if not present[entry['service']]['changed'] else 'none',
        })
    return rows


def file_rows(host, findings):
    rows = []
    for finding in findings:
        rows.append({
            'host': host, 'resource': finding['path'].rsplit('/', 1)[-1] or finding['path'],
            'type': finding['type'], 'owner': ', '.join(finding.get('owners') or []) or '-',
            'where': finding['path'], 'risk': finding['risk'], 'reason': finding['reason'],
            'protection': finding['protection'],
        })
    return rows


def sort_rows(rows):
    return sorted(rows, key=lambda row: (RISK_ORDER[row['risk']], row['host'], row['type'], row['where']))


def build_map(hosts):
    """``hosts`` maps host name -> {listeners, findings, registry, protected}; returns the sorted rows."""
    rows = []
    for host in sorted(hosts):
        data = hosts[host]
        rows.extend(port_rows(host, data.get('listeners', []), data.get('registry', []), data.get('protected', [])))
        rows.extend(file_rows(host, data.get('findings', [])))
    return sort_rows(rows)


def _cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def _table(rows, with_host):
    columns = (('Host',) if with_host else ()) + COLUMNS
    lines = ['| %s |' % ' | '.join(columns), '|%s' % ('---|' * len(columns))]
    for row in rows:
        cells = ([row['host']] if with_host else []) + [
            row['resource'], TYPE_LABELS.get(row['type'], row['type']), row['owner'], row['where'],
            row['risk'], row['protection']]
        lines.append('| %s |' % ' | '.join(_cell(cell) for cell in cells))
    return lines


def render_markdown(rows):
    counts = dict((risk, sum(1 for row in rows if row['risk'] == risk)) for risk in RISK_ORDER)
    lines = ['# Collision map', '',
             'Written by qwf.collision_guard.audit. Risk: critical breaks a service now or at its next',
             'start; medium can break it when two users meet; low is protected or harmless.', '',
             'Fleet: %d critical, %d medium, %d low.' % (counts['critical'], counts['medium'], counts['low']), '']
    for host in sorted(set(row['host'] for row in rows)):
        host_rows = [row for row in rows if row['host'] == host]
        lines += ['## %s' % host, ''] + _table(host_rows, False) + ['']
        notable = [row for row in host_rows if row['risk'] != 'low']
        if notable:
            lines += ['Why:', '']
            lines += ['- %s (%s): %s' % (_cell(row['where']), row['risk'], _cell(row['reason'])) for row in notable]
            lines.append('')
    lines += ['## Fleet', ''] + _table(rows, True) + ['']
    return '\n'.join(lines)


def registry_table(registry, present_units=()):
    """The registry as a Markdown table, each entry marked when its unit is on this host."""
    lines = ['| Port | Service | Protocol | Notes | On this host |', '|---|---|---|---|---|']
    for entry in sorted(registry, key=lambda item: (item['port'], item['protocol'])):
        lines.append('| %s |' % ' | '.join(_cell(cell) for cell in (
            entry['port'], entry['service'], entry['protocol'], entry.get('notes') or '',
            'yes' if entry['service'] in present_units else 'no')))
    return '\n'.join(lines) + '\n'


def render_json(rows):
    return json.dumps({'rows': rows}, indent=2, sort_keys=True) + '\n'


def _yaml_string(text):
    return json.dumps(text)


def registry_draft(hosts):
    """A proposed collision_guard_registry, from the listeners that systemd services own."""
    seen = {}
    for host in sorted(hosts):
        for listener in hosts[host].get('listeners', []):
            unit = listener.get('unit') or ''
            if not unit.endswith('.service') or unit.startswith(_TRANSIENT_PREFIXES):
                continue
            key = (listener['port'], listener['protocol'])
            seen.setdefault(key, {}).setdefault(unit, set()).add(host)

    lines = ['---', '# Proposed by qwf.collision_guard.audit from the listeners that systemd services own.',
             '# Review it, then paste it into group_vars/all.yml.', 'collision_guard_registry:']
    for (port, protocol) in sorted(seen):
        units = seen[(port, protocol)]
        first = sorted(units)[0]
        if len(units) > 1:
            others = ', '.join('%s on %s' % (unit, ', '.join(sorted(units[unit]))) for unit in sorted(units)[1:])
            lines.append('  # %d/%s is also held by %s; one port can have one owner.' % (port, protocol, others))
        lines += ['  - port: %d' % port,
                  '    service: %s' % first,
                  '    protocol: %s' % protocol,
                  '    notes: %s' % _yaml_string('seen on %s' % ', '.join(sorted(units[first])))]
    if not seen:
        lines[-1] = 'collision_guard_registry: []'
    return '\n'.join(lines) + '\n'
