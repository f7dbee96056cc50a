# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Rendering of the systemd drop-ins the collection writes.

Input is a registry already validated by ``_registry``; nothing here
re-checks user input, and no free text (``notes``) reaches a unit file.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

# The first line of every file the collection writes. It lets the collection
# find and remove its own files later, so it must never change.
MANAGED_MARKER = '# Managed by qwf.collision_guard.'
PORT_CLEANUP_NAME = 'port-cleanup.conf'
CLEANUP_METHODS = ('fuser',)
DEFAULT_UNIT_DIR = '/etc/systemd/system'


def managed_header(purpose):
    return '%s Local edits are overwritten.\n# %s\n' % (MANAGED_MARKER, purpose)


def is_managed(content):
    return content.startswith(MANAGED_MARKER)


def dropin_path(unit, name=PORT_CLEANUP_NAME, unit_dir=DEFAULT_UNIT_DIR):
    return os.path.join(unit_dir, unit + '.d', name)


def _cleanup_command(entry, method):
    if method == 'fuser':
        # "-": fuser exits 1 when nothing holds the port, the normal case.
        # "+": run as root, outside the unit's sandbox, so a service with
        # User= can still see and kill a squatter owned by someone else.
        return '-+fuser --kill --namespace %s %d' % (entry['protocol'], entry['port'])
    raise CollisionGuardError('unknown cleanup method %r (known: %s)' % (method, ', '.join(CLEANUP_METHODS)))


def render_port_cleanup(unit, entries, method='fuser'):
    """Return the text of ``port-cleanup.conf`` for one unit and its registry entries."""
    ports = sorted((entry for entry in entries if entry['service'] == unit),
                   key=lambda entry: (entry['protocol'], entry['port']))
    if not ports:
        raise CollisionGuardError('no registry entry for %s' % unit)
    lines = [managed_header('Frees the registered ports of %s before every start.' % unit), '[Service]']
    for entry in ports:
        lines.append('ExecStartPre=%s' % _cleanup_command(entry, method))
    return '\n'.join(lines) + '\n'


def units_in_order(registry):
    """The registry's units, each once, in the order they first appear."""
    seen = []
    for entry in registry:
        if entry['service'] not in seen:
            seen.append(entry['service'])
    return seen


def plan_port_cleanup(registry, present_units, method='fuser', unit_dir=DEFAULT_UNIT_DIR):
    """Split the registry into drop-ins to write and entries whose unit is absent.

    Returns ``(dropins, absent)``: ``dropins`` maps each drop-in path to its
    desired content and unit, ``absent`` lists the entries whose unit does not
    exist on this host.
    """
    dropins = {}
    for unit in units_in_order(registry):
        if unit in present_units:
            dropins[dropin_path(unit, unit_dir=unit_dir)] = {
                'unit': unit,
                'content': render_port_cleanup(unit, registry, method),
            }
    absent = [entry for entry in registry if entry['service'] not in present_units]
    return dropins, absent
