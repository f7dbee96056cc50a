# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Who owns a port, as systemd sees it: one judgement for every caller.

A registered entry's port is rightly held by its unit under its canonical
name (aliases are the same unit), by the units that are part of it
(``ConsistsOf``) and by the socket units that trigger it (``TriggeredBy``).
Sockets on other addresses than the entry's do not collide with it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint, entry_collides
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    DEFAULT_NEVER_EVICT,
    claim_problem,
    entry_label,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import read_listeners
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import (
    LIST_SOCKETS_COMMAND,
    VIEW_PROPERTIES,
    attribute_socket_units,
    is_packaged,
    list_units_command,
    parse_list_units,
    socket_units_by_port,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import glob_matches, is_glob

OWNED = 'owned'
SQUATTED = 'squatted'
FREE = 'free'

# What one socket on a registered port is to that entry. Every caller judges
# with ``Judge.verdict``: the eviction helper, port_ownership_info (check.yml),
# the monitor, guard_dropins (harden), wait_for_port_owner (verify) and audit.
OWNER = 'owner'          # the registered unit, a unit part of it, or a socket unit that triggers it
ELSEWHERE = 'elsewhere'  # bound to an address that does not collide with the entry's
SQUATTER = 'squatter'    # may be evicted when the registered unit starts
SPARED = 'spared'        # collides, but is never evicted: the start fails instead

# Severities of port_ownership_info's findings, which check.yml judges.
OK = 'ok'
WARNING = 'warning'
CRITICAL = 'critical'
_SEVERITY_ORDER = {CRITICAL: 0, WARNING: 1, OK: 2}
HOLDER_KEYS = ('pid', 'name', 'user', 'cmdline', 'unit', 'container')

TRANSIENT_UNIT_DIR = '/run/systemd/transient/'


class UnitView(object):
    """What systemd says of the units that matter here: ``show_command`` properties by name.

    An alias is asked under its own name and answers with the properties of
    the unit it names, so ``canonical`` folds aliases into one unit.
    """

    def __init__(self, properties):
        self.properties = {}
        for name, props in properties.items():
            self.add(name, props)

    def add(self, name, props):
        self.properties[name] = props
        if props.get('Id') and props.get('LoadState', '') not in ('', 'not-found'):
            self.properties.setdefault(props['Id'], props)

    def get(self, name, key, default=''):
        return (self.properties.get(name) or {}).get(key, default)

    def words(self, name, key):
        return self.get(name, key).split()

    def known(self, name):
        return name in self.properties

    def loaded(self, name):
        return self.get(name, 'LoadState') not in ('', 'not-found')

    def canonical(self, name):
        return self.get(name, 'Id') or name

    def active(self, name):
        return self.get(name, 'ActiveState') in ('active', 'reloading')

    def trigger_sockets(self, service):
        """The socket units that start ``service``: its TriggeredBy, and known socket units whose Triggers name it.

        systemd fills TriggeredBy only while the socket unit is loaded, and
        a drill stops it; the socket unit's own Triggers always names it.
        """
        service = self.canonical(service)
        found = [unit for unit in self.words(service, 'TriggeredBy') if unit.endswith('.socket')]
        for name, props in sorted(self.properties.items()):
            if name.endswith('.socket') and name == props.get('Id') and service in props.get('Triggers', '').split() \
                    and name not in found:
                found.append(name)
        return found

    def owners(self, service):
        """The units that rightly hold ``service``'s port: itself, the units part of it, its socket units."""
        unit = self.canonical(service)
        return set([unit] + self.words(unit, 'ConsistsOf') + self.trigger_sockets(unit))

    def packaged(self, unit):
        # snapd writes its units to /etc/systemd/system, but they come from packages all the same.
        return is_packaged(self.get(unit, 'FragmentPath')) or unit.startswith('snap.')

    def ad_hoc(self, unit):
        """Units nobody installed: login sessions and other scopes, transient units, processes outside a unit."""
        return (not unit or unit.endswith('.scope')
                or self.get(unit, 'FragmentPath').startswith(TRANSIENT_UNIT_DIR))


def _user_of(manager):
    """``user 1500`` for ``user@1500.service``."""
    return 'user %s' % manager[len('user@'):-len('.service')]


def holder_unit(listener):
    """The holder's unit as this collection names it: user units carry their manager's name."""
    if listener.get('user_manager'):
        return '%s/%s' % (listener['user_manager'], listener.get('unit'))
    return listener.get('unit')


class Judge(object):
    """The one ownership judgement, for the entries present on this host.

    ``never_evict`` holds unit globs that are spared whatever holds them;
    ``host_netns`` (the eviction helper sets it) spares processes of other
    network namespaces. Units from a package are spared too, unless the
    entry names them in ``evict_holders``.
    """

    def __init__(self, entries, view, never_evict=DEFAULT_NEVER_EVICT, host_netns=None, absent=()):
        self.entries = list(entries)
        self.view = view
        self.never_evict = list(never_evict)
        self.host_netns = host_netns
        # Registered by name although systemd did not find them: still never evicted.
        self.absent = list(absent)
        # Whether systemd answered every question; the helper acts only when it did.
        self.systemd_answered = True

    def owners(self, service):
        # Not cached: what systemd says of socket units grows as holders are learned.
        return self.view.owners(service)

    def names(self, unit):
        """Every name of a unit: its canonical name and its aliases."""
        return [unit] + [name for name in self.view.words(unit, 'Names') if name != unit]

    def registered_elsewhere(self, entry, unit):
        """Why ``unit`` belongs to another registered entry, or None."""
        labels, parents = [], []
        for other in self.entries:
            if other['service'] != entry['service'] and unit in self.owners(other['service']):
                labels.append(entry_label(other))
                if other['service'] != unit and other['service'] not in parents:
                    parents.append(other['service'])
        for other in self.absent:
            if other['service'] != entry['service'] and other['service'] in self.names(unit):
                labels.append(entry_label(other))
        if not labels:
            return None
        part = ', part of %s,' % ', '.join(parents) if parents else ''
        return '%s%s is registered for %s; a registered service is never killed' % (unit, part, ', '.join(labels))

    def protection(self, entry, unit):
        """Why ``unit`` may never be evicted for ``entry``, or None."""
        names = self.names(unit)
        for pattern in self.never_evict:
            if any(glob_matches(pattern, name) for name in names):
                return '%s is never evicted (collision_guard_never_evict: %s)' % (unit, pattern)
        named = any(name in entry.get('evict_holders', []) for name in names)
        if self.view.packaged(unit) and not named:
            return ('%s is a packaged system service (%s); it is evicted only when the entry names it in '
                    'evict_holders' % (unit, self.view.get(unit, 'FragmentPath')))
        return None

    def verdict(self, entry, listener):
        """(OWNER | ELSEWHERE | SQUATTER | SPARED, reason) of one socket on ``entry``'s port."""
        if not entry_collides(entry.get('address'), listener):
            return ELSEWHERE, 'bound to %s, which %s does not claim' % (
                endpoint(listener['address'], listener['port']), entry_label(entry))
        unit = listener.get('unit')
        if listener.get('pid') is None:
            return SPARED, 'no process this host shows holds it (a kernel socket, or not seen without root)'
        manager = listener.get('user_manager')
        if manager:
            # A user names its units, and may move its processes anywhere in its
            # manager's tree: only the manager's own main process is spared.
            if unit == 'init.scope' and self.view.get(manager, 'MainPID', None) in (None, str(listener['pid'])):
                return SPARED, 'the service manager of %s is never evicted' % manager
            return SQUATTER, 'a unit of %s (%s), named %s, is not a system unit' % (
                _user_of(manager), manager, unit)
        if unit in self.owners(entry['service']):
            if unit == self.view.canonical(entry['service']):
                return OWNER, 'held by %s' % unit
            if unit in self.view.trigger_sockets(entry['service']):
                return OWNER, 'held for %s by its socket unit %s' % (entry['service'], unit)
            return OWNER, 'held by %s, which is part of %s' % (unit, entry['service'])
        if listener['pid'] == 1:
            return SPARED, 'PID 1 holds it for %s; systemd is never killed' % (unit or 'a socket unit')
        # The socket's namespace, not its process's: a process may leave the
        # namespace its socket stays in.
        netns = listener.get('netns')
        if netns and self.host_netns and netns != self.host_netns:
            return SPARED, 'its socket is in another network namespace than PID 1\'s'
        elsewhere = self.registered_elsewhere(entry, unit)
        if elsewhere:
            return SPARED, elsewhere
        container = listener.get('container') or (unit if unit and unit.startswith('machine-') else None)
        if container and not any(name in entry.get('evict_holders', []) for name in self.names(unit or '')):
            return SPARED, 'a container or virtual machine (%s) is never evicted unless evict_holders names %s' % (
                container, unit or 'its unit')
        if unit and not unit.endswith('.scope') and not self.view.known(unit):
            return SPARED, 'systemd did not say what %s is, so it is not evicted' % unit
        if unit:
            protection = self.protection(entry, unit)
            if protection:
                return SPARED, protection
        return SQUATTER, 'not registered for this port'

    def colliding(self, entry, listeners):
        """(listener, verdict, reason) for each socket on the entry's port and protocol that collides with it."""
        judged = []
        for listener in listeners:
            if (listener['port'], listener['protocol']) != (entry['port'], entry['protocol']):
                continue
            verdict, reason = self.verdict(entry, listener)
            if verdict != ELSEWHERE:
                judged.append((listener, verdict, reason))
        return judged


def port_state(judge, entry, listeners):
    """``owned`` when only the entry's owners hold its port, ``squatted`` when anything else does, else ``free``."""
    judged = judge.colliding(entry, listeners)
    if not judged:
        return FREE
    if all(verdict == OWNER for dummy, verdict, dummy_reason in judged):
        return OWNED
    return SQUATTED


def _holder(listener, reason=None):
    holder = dict((key, listener.get(key)) for key in HOLDER_KEYS)
    holder['unit'] = holder_unit(listener)
    if reason:
        holder['reason'] = reason
    return holder


def ownership_findings(judge, listeners, absent=()):
    """The entries present on this host compared with who holds each port: findings, and the unregistered listeners.

    One finding per entry of ``judge``: ``ok`` when only its owners hold the
    port, ``critical`` when any other process does (``holders`` names them,
    each with the judgement's reason), ``warning`` when nothing listens on it.
    """
    findings = []
    for entry in judge.entries:
        judged = judge.colliding(entry, listeners)
        others = [(listener, reason) for listener, verdict, reason in judged if verdict != OWNER]
        if others:
            severity = CRITICAL
            holders = sorted(dict((listener['pid'], _holder(listener, reason)) for listener, reason in others).values(),
                             key=lambda item: item['pid'] or 0)
            bound = set(listener['pid'] for listener, dummy in others if listener.get('blocks_bind'))
            message = 'held by %s, not by %s: its next start fails unless the holder is evicted' % (
                ', '.join('%s (pid %s%s)' % (item['unit'] or item['name'] or '?', item['pid'],
                                             ', bound to the port without listening' if item['pid'] in bound else '')
                          for item in holders),
                entry['service'])
        elif judged:
            severity, holders = OK, []
            message = '; '.join(sorted(set(reason for dummy, dummy_verdict, reason in judged)))
        else:
            severity, holders, message = WARNING, [], 'nothing listens on it: %s is not serving' % entry['service']
        findings.append({'port': entry['port'], 'protocol': entry['protocol'], 'address': entry.get('address'),
                         'service': entry['service'], 'severity': severity, 'holders': holders, 'message': message})
    findings.sort(key=lambda item: (_SEVERITY_ORDER[item['severity']], item['protocol'], item['port']))
    every_entry = judge.entries + list(absent)
    unregistered = {}
    for item in listeners:
        if any((entry['port'], entry['protocol']) == (item['port'], item['protocol'])
               and entry_collides(entry.get('address'), item) for entry in every_entry):
            continue
        unregistered[(item['protocol'], item['port'], item['pid'] or 0)] = dict(
            _holder(item), port=item['port'], protocol=item['protocol'], address=item['address'])
    return findings, [unregistered[key] for key in sorted(unregistered)]


def arm_problems(judge, listeners, connection_units=()):
    """Look before arming: ``(problems, warnings)`` about the entries of ``judge`` and who holds their ports now.

    An entry is not armed (a problem) when its unit is a oneshot wrapper
    whose members hold the port, when a service or socket unit that is
    neither the unit nor part of it holds the port (a registry mistake
    would stop it at every start) unless the entry's ``evict_holders``
    names it, or when the holder is the unit of the Ansible connection.
    Ad-hoc holders (sessions, transient units, user units) are what the
    guard evicts; they only draw a warning.
    """
    view = judge.view
    problems, warnings = [], []
    for entry in judge.entries:
        service = entry['service']
        label = '%s (%s)' % (entry_label(entry), service)
        judged = judge.colliding(entry, listeners)
        members = view.words(service, 'ConsistsOf')
        if view.get(service, 'Type') == 'oneshot' and members:
            holding = sorted(set(listener['unit'] for listener, verdict, dummy in judged
                                 if verdict == OWNER and listener.get('unit') in members))
            problems.append('%s: %s is a oneshot wrapper (Type=oneshot) that holds no port itself; %s. Register %s '
                            'instead, or a glob that fits it on every host' % (
                                label, service,
                                'its member %s holds the port' % ', '.join(holding) if holding else
                                'the units part of it are %s' % ', '.join(members),
                                ' or '.join(holding or members)))
            continue
        for listener, verdict, reason in judged:
            if verdict == OWNER:
                continue
            unit = holder_unit(listener)
            triggers = view.words(unit, 'Triggers') if unit and unit.endswith('.socket') else []
            holder = '%s (pid %s%s)' % (unit or listener.get('name') or '?', listener['pid'],
                                        ', for %s' % ', '.join(triggers) if triggers else '')
            if listener.get('unit') in connection_units and not listener.get('user_manager'):
                problems.append('%s is held by %s, a unit of this Ansible connection; it is never armed against it'
                                % (label, holder))
            elif unit and unit in entry.get('evict_holders', []):
                warnings.append('%s is held by %s, which evict_holders names: %s' % (
                    label, holder, 'the next start of %s evicts it' % service if verdict == SQUATTER else
                    'yet the helper will not evict it: %s' % reason))
            elif verdict == SPARED or not (listener.get('user_manager') or view.ad_hoc(listener.get('unit'))):
                problems.append('%s is held by %s, which is neither %s nor part of it: %s. If the registry is right '
                                'and it must go at every start of %s, add %s to the entry\'s evict_holders' % (
                                    label, holder, service, reason, service, unit or 'it'))
            else:
                warnings.append('%s is held by %s now; the next start of %s evicts it' % (label, holder, service))
    # A holder listening on IPv4 and IPv6 is one holder.
    return _distinct(problems), _distinct(warnings)


def _distinct(lines):
    kept = []
    for line in lines:
        if line not in kept:
            kept.append(line)
    return kept


def trigger_sockets_on_ports(judge, socket_units):
    """Map each service to its socket units that listen on one of its registered ports (``socket_units_by_port``)."""
    found = {}
    for entry in judge.entries:
        for socket in judge.view.trigger_sockets(entry['service']):
            if socket in socket_units.get((entry['protocol'], entry['port']), []):
                found.setdefault(entry['service'], [])
                if socket not in found[entry['service']]:
                    found[entry['service']].append(socket)
    return found


def resolve_entries(registry, view, matches, where='this host'):
    """The registry as this host sees it: ``(entries, absent, problems)``.

    Each entry's ``service`` becomes the canonical name of a loaded unit: an
    alias becomes the unit it names, and a glob the one loaded unit in
    ``matches`` it fits. No unit means absent; a glob that fits several is a
    problem naming them, and so are two units claiming colliding addresses.
    """
    entries, absent, problems = [], [], []
    claimed = {}
    for index, entry in enumerate(registry):
        if is_glob(entry['service']):
            fits = sorted(set(view.canonical(name) for name in matches
                              if glob_matches(entry['service'], name) and view.loaded(name)))
            if len(fits) > 1:
                problems.append('%s[%d].service: %s fits %d loaded units here (%s); one port can have one owner, '
                                'so name one of them' % (where, index, entry['service'], len(fits), ', '.join(fits)))
                continue
        else:
            fits = [view.canonical(entry['service'])] if view.loaded(entry['service']) else []
        if not fits:
            absent.append(entry)
            continue
        resolved = dict(entry, service=fits[0])
        problem = claim_problem(claimed, index, resolved, where)
        if problem:
            problems.append(problem)
            continue
        if resolved not in entries:
            claimed.setdefault((resolved['port'], resolved['protocol']), []).append((index, resolved))
            entries.append(resolved)
    return entries, absent, problems


def survey(registry, show, run_systemctl, proc='/proc', listeners=None, every_port=False, where='registry'):
    """What this host's systemd and sockets say about a registry, for any caller to judge.

    ``show(units, properties)`` maps each unit to its properties and
    ``run_systemctl(argv)`` returns what systemctl printed; how each fails is
    the caller's (a module fails, the helper and monitor carry on with less).
    ``listeners`` already read are reused; ``every_port`` reads every
    listener, not only those on registered ports.

    Returns a dict: ``entries`` (resolved, present), ``absent``, ``problems``,
    ``listeners``, ``complete``, ``view`` and ``socket_units``, which maps
    ``(protocol, port)`` to the socket units listening there.
    """
    patterns = [entry['service'] for entry in registry if is_glob(entry['service'])]
    matches = parse_list_units(run_systemctl(list_units_command(patterns)) or '') if patterns else []
    names = []
    for name in [entry['service'] for entry in registry if not is_glob(entry['service'])] + matches:
        if name not in names:
            names.append(name)
    properties = show(names, VIEW_PROPERTIES) if names else {}
    answered = all(name in properties for name in names)
    view = UnitView(properties)
    entries, absent, problems = resolve_entries(registry, view, matches, where)

    complete = True
    if listeners is None:
        targets = None if every_port else set((entry['port'], entry['protocol']) for entry in entries)
        # Sockets that hold a registered TCP port without listening are holders too.
        bound_ports = set(entry['port'] for entry in entries if entry['protocol'] == 'tcp')
        listeners, complete = read_listeners(targets=targets, proc=proc, bound_ports=bound_ports) \
            if targets is None or targets else ([], True)
    socket_units = learn_holders(view, entries, listeners, show, run_systemctl)
    wanted = [listener['unit'] for listener in listeners if listener.get('unit') and not listener.get('user_manager')
              and not listener['unit'].endswith('.scope')]
    # A caller that acts (the helper) must know whether systemd said all it was asked.
    answered = answered and all(view.known(unit) for unit in wanted)
    return {'entries': entries, 'absent': absent, 'problems': problems, 'listeners': listeners,
            'complete': complete, 'view': view, 'socket_units': socket_units, 'answered': answered}


def learn_holders(view, entries, listeners, show, run_systemctl, socket_map=True):
    """Add to ``view`` what judging ``listeners`` for ``entries`` needs; returns ``socket_units_by_port``.

    Names the socket unit of each socket PID 1 holds (changing ``listeners``
    in place), and asks systemd about holder units, members and socket units
    it was not asked about yet. Without ``socket_map`` (a caller that polls)
    the socket units are listed only when PID 1 holds a socket.
    """
    socket_units = {}
    if any(listener['pid'] == 1 for listener in listeners) or \
            socket_map and any(view.trigger_sockets(e['service']) for e in entries):
        output = run_systemctl(LIST_SOCKETS_COMMAND) or ''
        socket_units = socket_units_by_port(output)
        attribute_socket_units(listeners, output)
    wanted = set(listener['unit'] for listener in listeners if listener.get('unit') and not listener.get('user_manager'))
    # A user's manager is a system unit: its MainPID tells the manager from the user's processes.
    wanted.update(listener['user_manager'] for listener in listeners if listener.get('user_manager'))
    for entry in entries:
        wanted.update(view.words(entry['service'], 'ConsistsOf') + view.trigger_sockets(entry['service']))
    unknown = sorted(unit for unit in wanted if not view.known(unit))
    if unknown:
        for name, props in show(unknown, VIEW_PROPERTIES).items():
            view.add(name, props)
    return socket_units


def gather_findings(registry, show, run_systemctl, proc='/proc'):
    """This host's ``ownership_findings``: ``(findings, unregistered, complete, problems, answered)``.

    ``problems`` are the registry's per-host problems (a glob fitting several
    units); the entries they name are left out of the findings. ``answered``
    is False when systemd did not say all it was asked, so entries may be
    missing from the findings.
    """
    found = survey(registry, show, run_systemctl, proc=proc, every_port=True)
    judge = Judge(found['entries'], found['view'], absent=found['absent'])
    findings, unregistered = ownership_findings(judge, found['listeners'], found['absent'])
    return findings, unregistered, found['complete'], found['problems'], found['answered']


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
        table.append((finding['host'], '%s/%s' % (endpoint(finding.get('address'), finding['port']), finding['protocol']),
                      finding['service'],
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
