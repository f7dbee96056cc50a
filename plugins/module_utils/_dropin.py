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
import re

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError

# The first line of every file the collection writes. It lets the collection
# find and remove its own files later, so it must never change.
MANAGED_MARKER = '# Managed by qwf.collision_guard.'
PORT_CLEANUP_NAME = 'port-cleanup.conf'
RESTART_POLICY_NAME = 'restart-policy.conf'
CLEANUP_METHODS = ('evict', 'fuser', 'none')
DEFAULT_UNIT_DIR = '/etc/systemd/system'
DEFAULT_HELPER_DIR = '/usr/local/lib/collision-guard'
DEFAULT_HELPER_PYTHON = '/usr/bin/python3'
HELPER_NAME = 'collision-guard-evict'
RESTART_VALUES = ('no', 'on-success', 'on-failure', 'on-abnormal', 'on-watchdog', 'on-abort', 'always')
# RestartSteps= and RestartMaxDelaySec= exist from systemd 254 on.
BACKOFF_SINCE = 254
EVICTION_TIMEOUT_MAX = 300

DEFAULT_CLEANUP = {
    'method': 'evict',
    'grace_sec': 2,
    'timeout_sec': 10,
    'helper_dir': DEFAULT_HELPER_DIR,
    'helper_python': DEFAULT_HELPER_PYTHON,
}

# Paths that reach a unit file go through systemd's command-line parser, so
# they are kept to characters that mean nothing to it ("%", "$", "\", quotes,
# spaces and ";" all do).
_SAFE_PATH = re.compile(r'^(/[A-Za-z0-9._+-]+)+$')


def managed_header(purpose):
    return '%s Local edits are overwritten.\n# %s\n' % (MANAGED_MARKER, purpose)


def is_managed(content):
    return content.startswith(MANAGED_MARKER)


def dropin_path(unit, name=PORT_CLEANUP_NAME, unit_dir=DEFAULT_UNIT_DIR):
    return os.path.join(unit_dir, unit + '.d', name)


def helper_path(helper_dir=DEFAULT_HELPER_DIR):
    return os.path.join(helper_dir, HELPER_NAME)


def _number_problem(name, value, minimum, maximum, integer=False):
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        return '%s: %r is not %s' % (name, value, 'an integer' if integer else 'a number')
    if not minimum <= value <= maximum:
        return '%s: %r is out of range %s-%s' % (name, value, minimum, maximum)
    return None


def _path_problem(name, value):
    if not isinstance(value, str) or not _SAFE_PATH.match(value) or '/../' in value + '/' or '/./' in value + '/':
        return '%s: %r is not an absolute path of letters, digits and "._+-"' % (name, value)
    return None


def cleanup_problems(cleanup):
    """Every problem with the cleanup settings (see ``DEFAULT_CLEANUP``), as a list."""
    problems = []
    if cleanup.get('method') not in CLEANUP_METHODS:
        problems.append('method: %r is not one of %s' % (cleanup.get('method'), ', '.join(CLEANUP_METHODS)))
    if cleanup.get('method') != 'evict':
        return problems
    problems.extend(problem for problem in (
        _number_problem('grace_sec', cleanup.get('grace_sec'), 0.1, 60),
        _number_problem('timeout_sec', cleanup.get('timeout_sec'), 1, EVICTION_TIMEOUT_MAX),
        _path_problem('helper_dir', cleanup.get('helper_dir')),
        _path_problem('helper_python', cleanup.get('helper_python')),
    ) if problem)
    if not problems and cleanup['timeout_sec'] <= cleanup['grace_sec']:
        problems.append('timeout_sec: %r must be longer than grace_sec (%r)' % (cleanup['timeout_sec'], cleanup['grace_sec']))
    return problems


def restart_policy_problems(policy):
    """Every problem with the restart policy settings, as a list."""
    problems = [problem for problem in (
        _number_problem('start_limit_interval_sec', policy.get('start_limit_interval_sec'), 0, 86400),
        _number_problem('start_limit_burst', policy.get('start_limit_burst'), 1, 10000, integer=True),
        _number_problem('restart_sec', policy.get('restart_sec'), 0, 3600),
        _number_problem('restart_steps', policy.get('restart_steps'), 0, 1000, integer=True),
        _number_problem('restart_max_delay_sec', policy.get('restart_max_delay_sec'), 0, 86400),
    ) if problem]
    if policy.get('restart') not in ('',) + RESTART_VALUES:
        problems.append('restart: %r is not one of %s, or empty to leave Restart= alone' % (
            policy.get('restart'), ', '.join(RESTART_VALUES)))
    if not problems and policy['restart_steps'] and policy['restart_max_delay_sec'] <= policy['restart_sec']:
        problems.append('restart_max_delay_sec: %r must be longer than restart_sec (%r) when restart_steps is set' % (
            policy['restart_max_delay_sec'], policy['restart_sec']))
    return problems


def timespan(seconds):
    """A systemd time span: whole seconds as ``2s``, anything finer in milliseconds, and 0 as ``0``."""
    if not seconds:
        return '0'
    if float(seconds) == int(seconds):
        return '%ds' % int(seconds)
    return '%dms' % round(seconds * 1000)


def systemd_word(text):
    """One argument of an Exec line. Unit names may hold "\\" (as in ``\\x2d``), which systemd would unescape."""
    return text.replace('\\', '\\\\')


def _cleanup_command(unit, entries, cleanup):
    method = cleanup['method']
    if method == 'evict':
        # "+": run as root and outside the unit's sandbox, whatever User= says.
        # No "-": when the helper refuses, the start must fail, loudly.
        return ['+%s -I %s --grace-sec %g --timeout-sec %g %s %s' % (
            cleanup['helper_python'], helper_path(cleanup['helper_dir']), cleanup['grace_sec'],
            cleanup['timeout_sec'], systemd_word(unit),
            ' '.join('%d/%s' % (entry['port'], entry['protocol']) for entry in entries))]
    if method == 'fuser':
        # "-": fuser exits 1 when nothing holds the port, the normal case.
        # "+": run as root, outside the unit's sandbox, so a service with
        # User= can still see and kill a squatter owned by someone else.
        return ['-+fuser --kill --namespace %s %d' % (entry['protocol'], entry['port']) for entry in entries]
    raise CollisionGuardError('unknown cleanup method %r (known: %s)' % (method, ', '.join(CLEANUP_METHODS)))


def render_port_cleanup(unit, entries, cleanup=None):
    """Return the text of ``port-cleanup.conf`` for one unit and its registry entries."""
    cleanup = dict(DEFAULT_CLEANUP, **(cleanup or {}))
    ports = sorted((entry for entry in entries if entry['service'] == unit),
                   key=lambda entry: (entry['protocol'], entry['port']))
    if not ports:
        raise CollisionGuardError('no registry entry for %s' % unit)
    lines = [managed_header('Frees the registered ports of %s before every start.' % unit), '[Service]']
    for command in _cleanup_command(unit, ports, cleanup):
        lines.append('ExecStartPre=%s' % command)
    return '\n'.join(lines) + '\n'


def render_restart_policy(unit, policy, systemd_version):
    """Return the text of ``restart-policy.conf``: restarts that back off instead of giving up."""
    lines = [managed_header('Keeps %s retrying its start instead of giving up.' % unit), '[Unit]',
             'StartLimitIntervalSec=%s' % timespan(policy['start_limit_interval_sec']),
             'StartLimitBurst=%d' % policy['start_limit_burst'],
             '', '[Service]']
    if policy['restart']:
        lines.append('Restart=%s' % policy['restart'])
    lines.append('RestartSec=%s' % timespan(policy['restart_sec']))
    if policy['restart_steps'] and systemd_version >= BACKOFF_SINCE:
        lines.append('RestartSteps=%d' % policy['restart_steps'])
        lines.append('RestartMaxDelaySec=%s' % timespan(policy['restart_max_delay_sec']))
    return '\n'.join(lines) + '\n'


def units_in_order(registry):
    """The registry's units, each once, in the order they first appear."""
    seen = []
    for entry in registry:
        if entry['service'] not in seen:
            seen.append(entry['service'])
    return seen


def plan_dropins(registry, present_units, cleanup=None, restart_policy=None, systemd_version=0,
                 unit_dir=DEFAULT_UNIT_DIR):
    """The drop-ins each present unit should have, and the entries whose unit is absent.

    Returns ``(dropins, absent)``. ``dropins`` maps each drop-in path to its
    unit and desired content; content None means the file should not exist
    (a cleanup method of ``none``, or no restart policy), so a managed copy
    left by an earlier run is removed.
    """
    cleanup = dict(DEFAULT_CLEANUP, **(cleanup or {}))
    dropins = {}
    for unit in units_in_order(registry):
        if unit not in present_units:
            continue
        dropins[dropin_path(unit, PORT_CLEANUP_NAME, unit_dir)] = {
            'unit': unit,
            'content': None if cleanup['method'] == 'none' else render_port_cleanup(unit, registry, cleanup),
        }
        dropins[dropin_path(unit, RESTART_POLICY_NAME, unit_dir)] = {
            'unit': unit,
            'content': render_restart_policy(unit, restart_policy, systemd_version) if restart_policy else None,
        }
    absent = [entry for entry in registry if entry['service'] not in present_units]
    return dropins, absent


def unit_of_dropin(path):
    """The unit a drop-in belongs to: ``/etc/systemd/system/a.service.d/x.conf`` -> ``a.service``."""
    return os.path.basename(os.path.dirname(path))[:-len('.d')]


def plan_purge(found, dropins):
    """Removals for the collection's drop-ins on the host (``found``) that ``dropins`` does not plan.

    With ``exclusive``, that is every drop-in of a unit that left the
    registry; for ``state: absent``, ``dropins`` is empty and it is all of them.
    """
    return dict((path, {'unit': unit_of_dropin(path), 'content': None}) for path in found if path not in dropins)


def parse_systemd_version(output):
    """The major version from ``systemctl --version`` (``systemd 252 (252.30-1~deb12u2)``), or 0."""
    match = re.match(r'^systemd (\d+)', output.strip())
    return int(match.group(1)) if match else 0
