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

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import (
    as_service_unit,
    service_unit_name_problem,
)

# Where the harden role writes the registry on each host; fixed by the user contract.
REGISTRY_PATH = '/etc/collision-guard/registry.json'
PROTOCOLS = ('tcp', 'udp')
DEFAULT_PROTOCOL = 'tcp'
ENTRY_KEYS = ('port', 'service', 'protocol', 'notes')
PORT_MIN = 1
PORT_MAX = 65535

_DIGITS = re.compile(r'^[0-9]+$')


def port_problem(value):
    """Return (port, problem); exactly one of them is None."""
    # bool is a subclass of int: "port: yes" must not become port 1.
    if isinstance(value, bool):
        return None, 'is not an integer in %d-%d' % (PORT_MIN, PORT_MAX)
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and _DIGITS.match(value):
        port = int(value)
    else:
        return None, 'is not an integer in %d-%d' % (PORT_MIN, PORT_MAX)
    if not PORT_MIN <= port <= PORT_MAX:
        return None, 'is out of range %d-%d' % (PORT_MIN, PORT_MAX)
    return port, None


def _service_problem(value):
    """Return (unit, problem); exactly one of them is None."""
    if not isinstance(value, str):
        return None, 'is not a string'
    if not value:
        return None, 'is empty'
    unit = as_service_unit(value)
    problem = service_unit_name_problem(unit)
    if problem:
        return None, problem
    return unit, None


def _validate_entry(index, entry, where, problems):
    """Check one entry; append its problems and return it normalised, or None."""
    here = '%s[%d]' % (where, index)
    if not isinstance(entry, dict):
        problems.append('%s: %r is not a mapping with port and service' % (here, entry))
        return None

    bad_before = len(problems)
    for key in sorted(set(entry) - set(ENTRY_KEYS), key=str):
        problems.append('%s: unknown key %r (known keys: %s)' % (here, key, ', '.join(ENTRY_KEYS)))

    required = {}
    for key, check in (('port', port_problem), ('service', _service_problem)):
        if key not in entry:
            problems.append('%s.%s: missing' % (here, key))
            continue
        required[key], problem = check(entry[key])
        if problem:
            problems.append('%s.%s: %r %s' % (here, key, entry[key], problem))

    protocol = entry.get('protocol', DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        problems.append('%s.protocol: %r is not one of %s' % (here, protocol, ', '.join(PROTOCOLS)))

    notes = entry.get('notes', '')
    if notes is None:
        notes = ''
    if not isinstance(notes, str):
        problems.append('%s.notes: %r is not a string' % (here, notes))

    if len(problems) > bad_before:
        return None
    return {'port': required['port'], 'service': required['service'], 'protocol': protocol, 'notes': notes}


def validate_registry(registry, where='collision_guard_registry'):
    """Return the registry normalised, or raise CollisionGuardError listing every bad entry.

    Normalised entries always carry ``port`` (int), ``service`` (a unit name
    ending in ``.service``), ``protocol`` and ``notes``. Identical entries
    collapse into one; one port and protocol claimed by two services is an
    error, because only one of them can own it.
    """
    if registry is None:
        registry = []
    if not isinstance(registry, list):
        raise CollisionGuardError('%s must be a list of entries, got %s' % (where, type(registry).__name__))

    problems = []
    entries = []
    claimed = {}
    for index, raw_entry in enumerate(registry):
        entry = _validate_entry(index, raw_entry, where, problems)
        if entry is None:
            continue
        key = (entry['port'], entry['protocol'])
        if key in claimed:
            first_index, first = claimed[key]
            if first['service'] != entry['service']:
                problems.append('%s[%d]: %s/%s is already registered to %s at %s[%d]; it cannot also belong to %s' % (
                    where, index, entry['port'], entry['protocol'], first['service'],
                    where, first_index, entry['service']))
            continue
        claimed[key] = (index, entry)
        entries.append(entry)

    if problems:
        raise CollisionGuardError('%s has %d bad value(s); no host was changed' % (where, len(problems)), problems)
    return entries


# The kernel's default net.ipv4.ip_local_port_range.
DEFAULT_EPHEMERAL_RANGE = (32768, 60999)
WELL_KNOWN_MAX = 1023


def _entry_label(entry):
    return '%d/%s (%s)' % (entry['port'], entry['protocol'], entry['service'])


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


def load_registry(path):
    """The registry the role wrote on this host; CollisionGuardError when it is missing or bad."""
    try:
        with open(path) as handle:
            document = json.load(handle)
    except (IOError, OSError, ValueError) as error:
        raise CollisionGuardError('cannot read the registry %s: %s' % (path, error))
    if not isinstance(document, dict) or not isinstance(document.get('registry'), list):
        raise CollisionGuardError('%s has no "registry" list' % path)
    return validate_registry(document['registry'], where=path)
