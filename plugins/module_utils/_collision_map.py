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
import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import (
    WILDCARDS,
    endpoint,
    entries_collide,
    entry_collides,
    normalise_address,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._file_usage import _distinct_owners
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import printable
from ansible_collections.qwf.collision_guard.plugins.module_utils._sqlite import path_problem

RISK_ORDER = {'critical': 0, 'medium': 1, 'low': 2}
TYPE_LABELS = {
    'port': 'port', 'sqlite': 'SQLite database', 'lock': 'lock file', 'pidfile': 'PID file',
    'shared-temp': 'shared temp path', 'shared-file': 'shared file',
}
COLUMNS = ('Resource', 'Type', 'Owner', 'Port/Path', 'Risk', 'Protection')
# Units the drill and the system run that a registry should not claim.
_TRANSIENT_PREFIXES = ('run-', 'collision-guard-squatter-')
# What a YAML reader refuses anywhere in a stream, a comment too: YAML's printable set, less the line breaks.
_YAML_UNREADABLE = re.compile(u'[^\t\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]')
_YAML_ESCAPES = {'"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t'}
# A unit name made of these YAML reads as the plain string it is; any other is quoted.
_PLAIN_UNIT_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9:_.@\\-]*\Z')
# How many shared temp paths of one group a comment names before it counts the rest.
_PATHS_SHOWN = 5


def _owner_label(listener):
    return listener.get('unit') or '%s (pid %s)' % (listener.get('name') or '?', listener.get('pid'))


def _addresses(holders):
    return sorted(set(('[%s]' % h['address']) if ':' in (h.get('address') or '') else h.get('address') or '?'
                      for h in holders))


def port_rows(host, listeners, findings, unregistered, protected):
    """One row per registered port on a host, judged there, and per (protocol, port) no entry claims.

    ``findings`` and ``unregistered`` are port_ownership_info's: the host
    judged ownership as systemd sees it (aliases, members, socket units,
    addresses), so the map repeats no rule of its own.
    """
    guarded = dict((item['service'], not item['changed']) for item in protected)
    rows = []
    for finding in findings:
        service = finding['service']
        # Only the sockets that collide with the entry: dnsmasq on 127.0.0.2:53 is not on resolved's 127.0.0.53:53.
        seen = [item for item in listeners
                if (item['port'], item['protocol']) == (finding['port'], finding['protocol'])
                and entry_collides(finding.get('address'), item)]
        label = '%s/%s' % (endpoint(finding.get('address'), finding['port']), finding['protocol'])
        if finding['severity'] == 'critical':
            owner = ', '.join(sorted(set(_owner_label(holder) for holder in finding['holders'])))
            risk, reason = 'critical', 'registered to %s but %s' % (service, finding['message'])
        elif finding['severity'] == 'ok':
            owner = service
            risk = 'low' if guarded.get(service) else 'medium'
            reason = finding['message'] if guarded.get(service) else (
                '%s, but harden has not protected it on this host' % finding['message'])
        else:
            owner, risk = '-', 'medium'
            reason = 'registered and present, but nothing listens: the service is down'
        rows.append({
            'host': host, 'resource': service, 'type': 'port', 'owner': owner,
            'where': '%s on %s' % (label, ', '.join(_addresses(seen))) if seen else label,
            'port': finding['port'], 'protocol': finding['protocol'], 'risk': risk, 'reason': reason,
            'protection': 'port-cleanup drop-in' if guarded.get(service) else 'none',
        })

    by_key = {}
    for holder in unregistered:
        by_key.setdefault((holder['protocol'], holder['port']), []).append(holder)
    for (protocol, port), holders in by_key.items():
        owners = sorted(set(_owner_label(holder) for holder in holders))
        # port_ownership_info names each process once, with one of its addresses; the listeners have them all
        # (0.0.0.0 and :: of one service), less those of a registered entry on that port.
        pids = set(holder['pid'] for holder in holders)
        sockets = holders + [item for item in listeners
                             if (item['protocol'], item['port']) == (protocol, port) and item['pid'] in pids
                             and not any((finding['port'], finding['protocol']) == (port, protocol)
                                         and entry_collides(finding.get('address'), item) for finding in findings)]
        socket_unit = all(owner.endswith('.socket') for owner in owners)
        if socket_unit:
            risk, reason = 'low', 'held by systemd for a socket unit'
        elif all(owner.endswith('.service') for owner in owners):
            risk, reason = 'medium', 'no registered owner: anything can take it while the service is down'
        else:
            risk, reason = 'medium', 'held by an ad-hoc process (a session, a script or an agent), not a service'
        rows.append({
            'host': host, 'resource': ', '.join(owners), 'type': 'port', 'owner': ', '.join(owners),
            'where': '%d/%s on %s' % (port, protocol, ', '.join(_addresses(sockets))),
            'port': port, 'protocol': protocol, 'risk': risk, 'reason': reason,
            'protection': 'socket unit' if socket_unit else 'none',
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
    """``hosts`` maps host name -> {listeners, ownership, findings, protected}; returns the sorted rows.

    ``ownership`` is port_ownership_info's result (``findings``, ``unregistered``).
    """
    rows = []
    for host in sorted(hosts):
        data = hosts[host]
        ownership = data.get('ownership') or {}
        rows.extend(port_rows(host, data.get('listeners', []), ownership.get('findings', []),
                              ownership.get('unregistered', []), data.get('protected', [])))
        rows.extend(file_rows(host, data.get('findings', [])))
    return sort_rows(rows)


def _cell(text):
    # Paths and command lines come from other users: no control character reaches the map raw.
    return printable(str(text).replace('\n', ' ')).replace('|', '\\|')


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
            endpoint(entry.get('address'), entry['port']), entry['service'], entry['protocol'], entry.get('notes') or '',
            'yes' if entry['service'] in present_units else 'no')))
    return '\n'.join(lines) + '\n'


def render_json(rows):
    return json.dumps({'rows': rows}, indent=2, sort_keys=True) + '\n'


def _yaml_string(text):
    """``text`` as a double-quoted YAML scalar of printable ASCII, every other character escaped.

    The same bytes as ``json.dumps`` for printable text, but a character beyond
    U+FFFF is one ``\\U`` escape, not a surrogate pair YAML would read as two,
    and DEL is escaped, which a YAML reader refuses raw.
    """
    return '"%s"' % ''.join(
        _YAML_ESCAPES.get(char) or (char if ' ' <= char <= '~' else
                                    ('\\u%04x' if ord(char) <= 0xffff else '\\U%08x') % ord(char))
        for char in text)


def _yaml_name(unit):
    """A unit name for YAML: bare, as the draft always wrote it, unless it holds a character YAML could misread."""
    return unit if _PLAIN_UNIT_NAME.match(unit) else _yaml_string(unit)


def _comment(text):
    """``text`` fit for a YAML comment: one line, no control character, nothing a YAML reader refuses."""
    return '# ' + _YAML_UNREADABLE.sub(lambda match: '\\u%04x' % ord(match.group()),
                                       printable(text.replace('\n', ' ')))


def _service_unit(process):
    """The system service a registry entry can name for a listener or a file holder, else None.

    Transient units and units of a user's own manager are left out: a
    registry entry cannot own them.
    """
    unit = process.get('unit') or ''
    if unit.endswith('.service') and not unit.startswith(_TRANSIENT_PREFIXES) and not process.get('user_manager'):
        return unit
    return None


def _findings_of(hosts, kind):
    """``(host, finding, distinct owners)`` for each finding of type ``kind`` that two or more owners hold."""
    for host in sorted(hosts):
        for finding in hosts[host].get('findings') or []:
            if finding.get('type') != kind:
                continue
            owners = _distinct_owners(finding.get('holders') or [])
            if len(owners) > 1:
                yield host, finding, owners


def rollback_databases(hosts):
    """``{path: {host: owners}}``: each SQLite database two or more owners had open on a host in rollback mode."""
    databases = {}
    for host, finding, owners in _findings_of(hosts, 'sqlite'):
        if finding.get('journal_mode') == 'rollback':
            databases.setdefault(finding['path'], {}).setdefault(host, set()).update(owners)
    return databases


def temp_sharers(hosts):
    """``{unit: {path: other owners}}``: each service unit that shares a path in a shared temp dir with other owners."""
    sharers = {}
    for dummy_host, finding, owners in _findings_of(hosts, 'shared-temp'):
        for unit in set(_service_unit(holder) for holder in finding['holders']) - set([None]):
            sharers.setdefault(unit, {}).setdefault(finding['path'], set()).update(owners - set([unit]))
    return sharers


def _owners_on_hosts(seen):
    """'a, b on h1, h2; c on h3' for ``{host: owners}``."""
    groups = {}
    for host, owners in seen.items():
        groups.setdefault(tuple(sorted(owners)), []).append(host)
    return '; '.join('%s on %s' % (', '.join(owners), ', '.join(sorted(group))) for owners, group in sorted(groups.items()))


def _shared_paths(paths):
    """'/tmp/a, /tmp/b with x.service; /tmp/c with y.service' for ``{path: other owners}``."""
    groups = {}
    for path, others in paths.items():
        groups.setdefault(tuple(sorted(others)), []).append(path)
    parts = []
    for others, group in sorted(groups.items(), key=lambda item: min(item[1])):
        group.sort()
        more = len(group) - _PATHS_SHOWN
        parts.append('%s%s with %s' % (', '.join(group[:_PATHS_SHOWN]), ' and %d more' % more if more > 0 else '',
                                       ', '.join(others)))
    return '; '.join(parts)


def _sqlite_draft(hosts):
    """The proposed collision_guard_sqlite lines, none when no database needs WAL.

    A path collision_guard_sqlite would refuse (a control character in it)
    is named in a comment instead, so the draft passes as it is.
    """
    databases = rollback_databases(hosts)
    if not databases:
        return []
    lines = ['# SQLite databases that several owners open with a rollback journal, where a writer locks out every',
             '# reader and writer; in WAL, readers work beside the writer.', 'collision_guard_sqlite:']
    listed = False
    for path in sorted(databases):
        opened = 'rollback journal opened by %s' % _owners_on_hosts(databases[path])
        problem = path_problem(path)
        if problem:
            lines.append('  ' + _comment('%s: %s %s, so it cannot be proposed' % (opened, path, problem)))
            continue
        listed = True
        lines += ['  ' + _comment(opened), '  - path: %s' % _yaml_string(path), '    journal_mode: wal']
    if not listed:
        lines[2] = 'collision_guard_sqlite: []'
    return lines


def registry_draft(hosts):
    """A proposed collision_guard_registry, from the listeners that systemd services own, and collision_guard_sqlite.

    A service that binds a wildcard claims every address; one that binds
    only specific addresses gets an entry per address, so services sharing
    a port on separate addresses can all be registered. A service that
    shares a path in a shared temp dir with another owner gets
    ``private_tmp: true``; each rollback-journal database that two or more
    owners open is proposed for WAL.
    """
    claims = {}
    for host in sorted(hosts):
        for listener in hosts[host].get('listeners', []):
            unit = _service_unit(listener)
            if not unit:
                continue
            # As validate_registry writes it, so the draft passes unchanged.
            address = normalise_address(listener['address'])[0] or listener['address']
            claim = claims.setdefault((listener['port'], listener['protocol'], unit), {})
            claim.setdefault(address, set()).add(host)

    entries = []
    for (port, protocol, unit), claim in sorted(claims.items()):
        if set(claim) & set(WILDCARDS.values()):
            every_host = set(host for hosts_seen in claim.values() for host in hosts_seen)
            by_address = [(None, every_host)]
        else:
            by_address = sorted(claim.items())
        for address, hosts_seen in by_address:
            entries.append({'port': port, 'protocol': protocol, 'service': unit, 'address': address,
                            'hosts': sorted(hosts_seen)})

    sharers = temp_sharers(hosts)
    lines = ['---', '# Proposed by qwf.collision_guard.audit from the listeners that systemd services own.',
             '# Review it, then paste it into group_vars/all.yml.', 'collision_guard_registry:']
    registry_key = len(lines) - 1
    accepted = []
    for entry in entries:
        clash = [other for other in accepted if (other['port'], other['protocol']) == (entry['port'], entry['protocol'])
                 and other['service'] != entry['service'] and entries_collide(other['address'], entry['address'])]
        if clash:
            lines.append('  ' + _comment('%s/%s is also held by %s on %s; one port can have one owner.' % (
                endpoint(entry['address'], entry['port']), entry['protocol'], entry['service'], ', '.join(entry['hosts']))))
            continue
        accepted.append(entry)
        shared = sharers.get(entry['service'])
        if shared:
            lines.append('  ' + _comment('%s shares %s; private_tmp gives it a /tmp and /var/tmp of its own' % (
                entry['service'], _shared_paths(shared))))
        lines += ['  - port: %d' % entry['port'],
                  '    service: %s' % _yaml_name(entry['service']),
                  '    protocol: %s' % entry['protocol']]
        if entry['address']:
            lines.append('    address: %s' % _yaml_string(entry['address']))
        if shared:
            lines.append('    private_tmp: true')
        lines.append('    notes: %s' % _yaml_string('seen on %s' % ', '.join(entry['hosts'])))
    if not entries:
        lines[registry_key] = 'collision_guard_registry: []'

    registered = set(entry['service'] for entry in accepted)
    outbid = set(entry['service'] for entry in entries) - registered
    for unit in sorted(set(sharers) - registered):
        why = 'its ports are held by other services' if unit in outbid else 'it has no port to register'
        lines.append('  ' + _comment('%s shares %s; %s, so private_tmp cannot be proposed for it' % (
            unit, _shared_paths(sharers[unit]), why)))
    return '\n'.join(lines + _sqlite_draft(hosts)) + '\n'
