# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Validation of the port registry, ``collision_guard_registry``.

Everything a user writes in the registry ends up in unit files, paths and
commands on the hosts, so nothing leaves this file unchecked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import (
    endpoint,
    entries_collide,
    normalise_address,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import RESTART_VALUES
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import (
    DROPIN_UNIT_NAME_MAX,
    GLOB_CHARS,
    UNIT_TYPES,
    as_service_unit,
    is_glob,
    type_case_problem,
    unit_name_problem,
)

# Where the harden role writes the registry on each host; fixed by the user contract.
REGISTRY_PATH = '/etc/collision-guard/registry.json'
PROTOCOLS = ('tcp', 'udp')
DEFAULT_PROTOCOL = 'tcp'
ENTRY_KEYS = ('port', 'service', 'protocol', 'address', 'restart', 'evict_holders', 'private_tmp', 'pid_files', 'notes')
# Per-unit settings carried on the unit's entries, left out of the host's registry file at their defaults.
UNIT_SETTING_DEFAULTS = {'private_tmp': False, 'pid_files': []}
# Never evicted unless the operator changes collision_guard_never_evict: the
# way in to the host, systemd itself and the message bus.
DEFAULT_NEVER_EVICT = ('ssh.service', 'sshd.service', 'ssh.socket', 'sshd.socket', 'ssh@*.service',
                       'systemd-*', 'dbus.service', 'dbus.socket', 'dbus-broker.service', 'init.scope',
                       'user@*.service', 'getty@*.service', 'serial-getty@*.service')
PORT_MIN = 1
PORT_MAX = 65535

# \Z, not $: "$" also matches before a trailing newline.
_DIGITS = re.compile(r'^[0-9]+\Z')
# Characters free text may not carry: C0 and C1 controls but tab and newline
# (YAML block scalars give those, and the table makes a newline a space), DEL,
# the line and paragraph separators, bidirectional overrides, which make text
# read other than it is, and lone surrogates, which no file can hold.
_UNSAFE_TEXT = re.compile(r'[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]')
# A PID file's path reaches the eviction helper's command line in a unit file, so it is held to
# characters systemd's parser reads literally, as the role's other paths are.
_PID_FILE_PATH = re.compile(r'(/[A-Za-z0-9._+-]+)+\Z')
# Pseudo file systems hold no PID files; a path there is a mistake.
_NOT_PID_FILE_ROOTS = ('/proc/', '/sys/', '/dev/')
PATH_MAX = 4095
# How much of a bad value an error message shows.
SHOWN_MAX = 300


def shown(value):
    """``repr(value)`` for an error message: bounded, and never an error of its own."""
    if isinstance(value, int) and value.bit_length() > 1000:
        # Python 3.11+ refuses to write an int of more than 4300 digits; older ones take long.
        return 'an integer of about %d digits' % (value.bit_length() * 0.30103 + 1)
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        # A huge int inside a list, or nesting deeper than the interpreter's stack.
        return 'a %s that cannot be shown' % type(value).__name__
    if len(text) > SHOWN_MAX:
        return '%s... (%d characters)' % (text[:SHOWN_MAX], len(text))
    return text


def printable(text):
    """``text`` with every character free text may not carry written as an escape, such as ``\\x1b``."""
    return _UNSAFE_TEXT.sub(lambda match: repr(match.group())[1:-1], text)


def free_text_problem(text):
    """Why ``text`` cannot be written into PORTS.md and the registry docs as it is, or None."""
    match = _UNSAFE_TEXT.search(text)
    if match is None:
        return None
    return ('holds the control character %s at offset %d; free text reaches PORTS.md and the registry docs, '
            'so it may hold printable characters, tabs and newlines only' % (repr(match.group())[1:-1], match.start()))


def port_problem(value):
    """Return (port, problem); exactly one of them is None."""
    # bool is a subclass of int: "port: yes" must not become port 1.
    if isinstance(value, bool):
        return None, 'is not an integer in %d-%d' % (PORT_MIN, PORT_MAX)
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and _DIGITS.match(value):
        # Judged by its length first: int() refuses strings of more than 4300 digits on Python 3.11+.
        digits = value.lstrip('0')
        port = int(digits or '0') if len(digits) <= len(str(PORT_MAX)) else PORT_MAX + 1
    else:
        return None, 'is not an integer in %d-%d' % (PORT_MIN, PORT_MAX)
    if not PORT_MIN <= port <= PORT_MAX:
        return None, 'is out of range %d-%d' % (PORT_MIN, PORT_MAX)
    return port, None


def _service_problem(value):
    """Return (unit or glob, problem); exactly one of them is None."""
    if not isinstance(value, str):
        return None, 'is not a string'
    if not value:
        return None, 'is empty'
    unit = as_service_unit(value)
    problem = unit_name_problem(unit, glob=True) or type_case_problem(value)
    if problem:
        return None, problem
    if not is_glob(unit) and len(unit) > DROPIN_UNIT_NAME_MAX:
        return None, ('is longer than %d characters: its drop-in directory, %s.d, would be longer than the longest '
                      'file name, 255' % (DROPIN_UNIT_NAME_MAX, unit))
    if not unit[:-len('.service')].strip(GLOB_CHARS):
        # unit_name_problem allows it (a never-evict glob may spare every unit), but
        # a registered port belongs to one unit: this fits every service on a host.
        return None, 'is a glob of nothing but "*" and "?", which fits every service; a glob must fit one unit per host'
    return unit, None


def _address_problem(value):
    """Return (address or None for every address, problem)."""
    if value is None:
        return None, None
    return normalise_address(value)


def _restart_problem(value):
    if value in (None, ''):
        return '', None
    if isinstance(value, bool) or value not in RESTART_VALUES:
        # YAML reads an unquoted "no" as false.
        return None, 'is not one of %s%s' % (', '.join(RESTART_VALUES), ' (quote "no" in YAML)' if value is False else '')
    return value, None


def _evict_holders_problem(value):
    """Return (unit names, problem): the units an operator allows harden to arm against."""
    if value is None:
        return [], None
    if not isinstance(value, list):
        return None, 'is not a list of unit names'
    units = []
    for item in value:
        if not isinstance(item, str):
            return None, 'holds %s, which is not a unit name' % shown(item)
        unit = as_service_unit(item)
        problem = unit_name_problem(unit, types=UNIT_TYPES) or type_case_problem(item)
        if problem:
            return None, 'holds %s, which %s' % (shown(item), problem)
        if unit not in units:
            units.append(unit)
    return units, None


def _private_tmp_problem(value):
    if value is None:
        return False, None
    if not isinstance(value, bool):
        return None, 'is not true or false'
    return value, None


def pid_file_problem(path):
    """Why ``path`` cannot be a PID file the start check looks at, or None."""
    if not isinstance(path, str):
        return 'is not a string'
    if not _PID_FILE_PATH.match(path) or len(path) > PATH_MAX:
        return ('is not an absolute path of letters, digits and "._+-" (it reaches the eviction helper\'s command '
                'line in a unit file)')
    if re.search(r'/\.\.?(/|\Z)', path):
        return 'has a "." or ".." component'
    if path.startswith(_NOT_PID_FILE_ROOTS):
        return 'is in a pseudo file system (/proc, /sys, /dev), which holds no PID files'
    return None


def _pid_files_problem(value):
    """Return (paths, problem): the PID and lock files the start check clears when stale."""
    if value is None:
        return [], None
    if not isinstance(value, list):
        return None, 'is not a list of absolute paths'
    paths = []
    for item in value:
        problem = pid_file_problem(item)
        if problem:
            return None, 'holds %s, which %s' % (shown(item), problem)
        if item not in paths:
            paths.append(item)
    return paths, None


def _validate_entry(index, entry, where, problems):
    """Check one entry; append its problems and return it normalised, or None."""
    here = '%s[%d]' % (where, index)
    if not isinstance(entry, dict):
        problems.append('%s: %s is not a mapping with port and service' % (here, shown(entry)))
        return None

    bad_before = len(problems)
    for key in sorted(set(entry) - set(ENTRY_KEYS), key=shown):
        problems.append('%s: unknown key %s (known keys: %s)' % (here, shown(key), ', '.join(ENTRY_KEYS)))

    required = {}
    for key, check in (('port', port_problem), ('service', _service_problem)):
        if key not in entry:
            problems.append('%s.%s: missing' % (here, key))
            continue
        required[key], problem = check(entry[key])
        if problem:
            problems.append('%s.%s: %s %s' % (here, key, shown(entry[key]), problem))

    protocol = entry.get('protocol', DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        problems.append('%s.protocol: %s is not one of %s' % (here, shown(protocol), ', '.join(PROTOCOLS)))

    optional = {}
    for key, check in (('address', _address_problem), ('restart', _restart_problem),
                       ('evict_holders', _evict_holders_problem), ('private_tmp', _private_tmp_problem),
                       ('pid_files', _pid_files_problem)):
        optional[key], problem = check(entry.get(key))
        if problem:
            problems.append('%s.%s: %s %s' % (here, key, shown(entry.get(key)), problem))

    notes = entry.get('notes', '')
    if notes is None:
        notes = ''
    problem = free_text_problem(notes) if isinstance(notes, str) else 'is not a string'
    if problem:
        problems.append('%s.notes: %s %s' % (here, shown(notes), problem))

    if len(problems) > bad_before:
        return None
    return dict(optional, port=required['port'], service=required['service'], protocol=protocol, notes=notes)


def validate_registry(registry, where='collision_guard_registry'):
    """Return the registry normalised, or raise CollisionGuardError listing every bad entry.

    Normalised entries always carry ``port`` (int), ``service`` (a unit name
    or glob ending in ``.service``), ``protocol``, ``address`` (None for
    every address), ``restart`` ('' to keep the role's), ``evict_holders``
    (a list), ``private_tmp`` (a bool), ``pid_files`` (a list) and
    ``notes``. Entries of one service on the same port,
    protocol and address collapse into one, keeping every unit either names
    in ``evict_holders``; one port and protocol claimed by two services on
    colliding addresses is an error, because only one of them can own it.
    """
    if registry is None:
        registry = []
    if not isinstance(registry, list):
        raise CollisionGuardError('%s must be a list of entries, got %s' % (where, type(registry).__name__))

    problems = []
    entries = []
    claimed = {}
    restarts = {}
    pid_file_units = {}
    for index, raw_entry in enumerate(registry):
        entry = _validate_entry(index, raw_entry, where, problems)
        if entry is None:
            continue
        problem = pid_files_claim_problem(pid_file_units, index, entry, where)
        if problem:
            problems.append(problem)
            continue
        if entry['restart']:
            # Every entry counts, a collapsed duplicate too: one unit has one Restart=.
            restarts.setdefault(entry['service'], set()).add(entry['restart'])
        problem = claim_problem(claimed, index, entry, where)
        if problem:
            problems.append(problem)
            continue
        same = [first for dummy, first in claimed.get((entry['port'], entry['protocol']), [])
                if (first['service'], first['address']) == (entry['service'], entry['address'])]
        if same:
            _collapse(same[0], entry)
        else:
            claimed.setdefault((entry['port'], entry['protocol']), []).append((index, entry))
            entries.append(entry)

    problems.extend('%s: %s is given different restart values (%s); a unit has one Restart=' % (
        where, service, ', '.join(sorted(values))) for service, values in sorted(restarts.items()) if len(values) > 1)
    if problems:
        raise CollisionGuardError('%s has %d bad value(s); no host was changed' % (where, len(problems)), problems)
    return entries


def _collapse(first, duplicate):
    """Fold a duplicate of ``first`` (same service, port, protocol and address) into it, losing nothing it allows."""
    first['evict_holders'].extend(unit for unit in duplicate['evict_holders'] if unit not in first['evict_holders'])
    first['restart'] = first['restart'] or duplicate['restart']
    first['private_tmp'] = first['private_tmp'] or duplicate['private_tmp']
    first['pid_files'].extend(path for path in duplicate['pid_files'] if path not in first['pid_files'])
    first['notes'] = first['notes'] or duplicate['notes']


def pid_files_claim_problem(pid_file_units, index, entry, where):
    """Why ``entry``'s PID files cannot be its unit's: another unit lists one of them, or None.

    ``pid_file_units`` maps each path seen so far to (index, service), and takes ``entry``'s.
    One file has one writer: whichever unit started second would remove the other's.
    """
    for path in entry['pid_files']:
        first_index, service = pid_file_units.get(path, (index, entry['service']))
        if service != entry['service']:
            return '%s[%d].pid_files: %s is already listed for %s at %s[%d]; a PID file belongs to one unit' % (
                where, index, shown(path), service, where, first_index)
    for path in entry['pid_files']:
        pid_file_units.setdefault(path, (index, entry['service']))
    return None


def unit_settings(registry, unit):
    """``{'private_tmp': bool, 'pid_files': [...]}`` of ``unit``: what any of its entries asks for."""
    entries = [entry for entry in registry if entry['service'] == unit]
    pid_files = []
    for entry in entries:
        pid_files.extend(path for path in entry.get('pid_files') or [] if path not in pid_files)
    return {'private_tmp': any(entry.get('private_tmp') for entry in entries), 'pid_files': pid_files}


def without_default_settings(entry):
    """``entry`` without the per-unit settings it leaves at their defaults, as the host's registry file holds it."""
    return dict((key, value) for key, value in entry.items()
                if key not in UNIT_SETTING_DEFAULTS or value != UNIT_SETTING_DEFAULTS[key])


def claim_problem(claimed, index, entry, where):
    """Why ``entry`` cannot also be registered: an earlier entry of another unit claims a colliding address, or None.

    ``claimed`` maps (port, protocol) to the (index, entry) pairs accepted so far.
    """
    for first_index, first in claimed.get((entry['port'], entry['protocol']), []):
        if first['service'] != entry['service'] and entries_collide(first['address'], entry['address']):
            return '%s[%d]: %s/%s is already registered to %s at %s[%d]; it cannot also belong to %s' % (
                where, index, endpoint(entry['address'], entry['port']), entry['protocol'], first['service'],
                where, first_index, entry['service'])
    return None


def entry_label(entry):
    """``127.0.0.2:53/udp`` or ``8765/tcp``: an entry's port, with its address when it has one."""
    return '%s/%s' % (endpoint(entry['address'], entry['port']), entry['protocol'])


# The kernel's default net.ipv4.ip_local_port_range.
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
WELL_KNOWN_MAX = 1023


def _entry_label(entry):
    return '%s (%s)' % (entry_label(entry), entry['service'])


def well_known_port_warnings(registry):
    """Entries on a well-known system port, which a system service of the hosts may need; one line each."""
    return ['%s is a well-known system port; make sure no system service of the hosts needs it' % _entry_label(entry)
            for entry in registry if entry['port'] <= WELL_KNOWN_MAX]


def ephemeral_port_warnings(registry, ephemeral_range=DEFAULT_EPHEMERAL_RANGE):
    """Entries in the ephemeral range, where an outgoing connection can take the port first; one line each."""
    low, high = ephemeral_range
    return ['%s is in the ephemeral range %d-%d: unless it is reserved (net.ipv4.ip_local_reserved_ports, which '
            'harden sets by default), the kernel may hand it out as the source port of an outgoing connection, '
            'which blocks the service\'s bind' % (_entry_label(entry), low, high)
            for entry in registry if low <= entry['port'] <= high]


def registry_warnings(registry, ephemeral_range=DEFAULT_EPHEMERAL_RANGE):
    """What is legal but risky in a validated registry, one line per entry and reason, in registry order."""
    return [warning for entry in registry
            for warning in well_known_port_warnings([entry]) + ephemeral_port_warnings([entry], ephemeral_range)]


def both_protocols_problems(registry, where):
    """Units registered for one port under both protocols, as problems, for users who treat that as a mistake."""
    by_unit_port = {}
    for entry in registry:
        by_unit_port.setdefault((entry['service'], entry['port']), []).append(entry['protocol'])
    return ['%s: %s is registered for %d under both tcp and udp' % (where, service, port)
            for (service, port), protocols in sorted(by_unit_port.items()) if len(set(protocols)) > 1]


def parse_port_range(text):
    """``32768\t60999`` from /proc/sys/net/ipv4/ip_local_port_range -> (32768, 60999), or the default."""
    parts = text.split()
    if len(parts) == 2 and all(part.isdigit() for part in parts):
        return int(parts[0]), int(parts[1])
    return DEFAULT_EPHEMERAL_RANGE


def never_evict_problems(patterns, where='collision_guard_never_evict'):
    """Every bad unit glob of the never-evict list, as a list."""
    if not isinstance(patterns, list):
        return ['%s: %s is not a list of unit names or globs' % (where, shown(patterns))]
    problems = []
    for index, pattern in enumerate(patterns):
        problem = unit_name_problem(pattern, types=UNIT_TYPES, glob=True) if isinstance(pattern, str) else 'is not a string'
        if problem:
            problems.append('%s[%d]: %s %s' % (where, index, shown(pattern), problem))
    return problems


def load_registry_document(path):
    """The registry and never-evict list the role wrote on this host; CollisionGuardError when missing or bad."""
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (IOError, OSError, ValueError, RecursionError) as error:
        # RecursionError: arrays nested deeper than the interpreter's stack.
        raise CollisionGuardError('cannot read the registry %s: %s' % (path, error))
    if not isinstance(document, dict) or not isinstance(document.get('registry'), list):
        raise CollisionGuardError('%s has no "registry" list' % path)
    never_evict = document.get('never_evict', list(DEFAULT_NEVER_EVICT))
    registry, problems = [], []
    try:
        registry = validate_registry(document['registry'], where=path)
    except CollisionGuardError as error:
        problems = error.problems
    bad_never_evict = never_evict_problems(never_evict, where='%s never_evict' % path)
    if problems:
        raise CollisionGuardError('%s has %d bad value(s)' % (path, len(problems) + len(bad_never_evict)),
                                  problems + bad_never_evict)
    if bad_never_evict:
        raise CollisionGuardError('%s has a bad never_evict list' % path, bad_never_evict)
    return {'registry': registry, 'never_evict': never_evict}


def load_registry(path):
    """The registry the role wrote on this host; CollisionGuardError when it is missing or bad."""
    return load_registry_document(path)['registry']
