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

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import RESTART_VALUES, unit_settings

# The first line of every file the collection writes. It lets the collection
# find and remove its own files later, so it must never change.
MANAGED_MARKER = '# Managed by qwf.collision_guard.'
PORT_CLEANUP_NAME = 'port-cleanup.conf'
RESTART_POLICY_NAME = 'restart-policy.conf'
PRIVATE_TMP_NAME = 'private-tmp.conf'
# Every drop-in name the collection writes, found again by its managed header.
DROPIN_NAMES = (PORT_CLEANUP_NAME, RESTART_POLICY_NAME, PRIVATE_TMP_NAME)
CLEANUP_METHODS = ('evict', 'fuser', 'none')
DEFAULT_UNIT_DIR = '/etc/systemd/system'
DEFAULT_HELPER_DIR = '/usr/local/lib/collision-guard'
DEFAULT_HELPER_PYTHON = '/usr/bin/python3'
HELPER_NAME = 'collision-guard-evict'
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
# spaces, newlines and ";" all do). Matched as a whole, never with "$", which
# would let a trailing newline through.
_SAFE_PATH = re.compile(r'(/[A-Za-z0-9._+-]+)+')

# The shell the helper's command line runs under (Debian's essential dash).
GUARD_SHELL = '/bin/sh'
# A guard that cannot run must never block a start: this fixed script runs the
# helper's command line ("$@": interpreter, -I, helper, arguments) when its
# interpreter and helper are there, and passes on the helper's own exit codes
# (0 free, 1 refused, 2 bad arguments, 3 still held, 4 retaken). A missing
# interpreter or helper, or any other exit (a crash, a signal), is said at
# warning level and the start goes on, as it would without the guard. Every
# value reaches it as a positional parameter, never inside the script.
GUARD_SCRIPT = (
    'if [ ! -x "$1" ]; then what="its interpreter $1 is missing"; '
    'elif [ ! -f "$3" ]; then what="$3 is missing"; '
    'else "$@"; status=$?; case $status in [0-4]) exit $status;; esac; '
    'what="$3 failed with exit status $status"; fi; '
    'echo "${JOURNAL_STREAM:+<4>}collision-guard-evict: $what; the start goes on without freeing the port" >&2; '
    'exit 0')


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
    if not isinstance(value, str) or not _SAFE_PATH.fullmatch(value) or '/../' in value + '/' or '/./' in value + '/':
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


def guard_command(command):
    """``command`` (the helper's words, already systemd-safe) run under ``GUARD_SCRIPT``, as one Exec line.

    systemd expands "$" and "%" in Exec lines: the script's "$" are doubled,
    and it holds no "%", backslash or single quote.
    """
    return "%s -c '%s' collision-guard-evict %s" % (GUARD_SHELL, GUARD_SCRIPT.replace('$', '$$'), command)


def target_word(entry):
    """An entry as the helper takes it: ``8765/tcp`` or ``127.0.0.2:53/udp``."""
    return '%s/%s' % (endpoint(entry.get('address'), entry['port']), entry['protocol'])


def _cleanup_command(unit, entries, cleanup, starting=None, pid_files=()):
    method = cleanup['method']
    if method == 'evict':
        # "+": run as root and outside the unit's sandbox, whatever User= says.
        # No "-": when the helper refuses, the start must fail, loudly; the
        # guard script lets it go on when the helper cannot run at all.
        # PID file paths were held to systemd-literal characters by the registry's validation.
        return ['+' + guard_command('%s -I %s --grace-sec %g --timeout-sec %g %s%s%s %s' % (
            cleanup['helper_python'], helper_path(cleanup['helper_dir']), cleanup['grace_sec'],
            cleanup['timeout_sec'], '--starting %s ' % systemd_word(starting) if starting else '',
            ''.join('--pid-file %s ' % path for path in pid_files),
            systemd_word(unit), ' '.join(target_word(entry) for entry in entries)))]
    if pid_files:
        raise CollisionGuardError('%s: pid_files are cleared by the eviction helper, which the %s method does not run; '
                                  'use the evict method for entries with pid_files' % (unit, method))
    if method == 'fuser':
        addressed = [target_word(entry) for entry in entries if entry.get('address')]
        if addressed:
            raise CollisionGuardError('%s: the fuser method kills by port alone and cannot spare the other addresses '
                                      'of %s; use the evict method for entries with an address' % (
                                          unit, ', '.join(addressed)))
        # "-": fuser exits 1 when nothing holds the port, the normal case.
        # "+": run as root, outside the unit's sandbox, so a service with
        # User= can still see and kill a squatter owned by someone else.
        return ['-+fuser --kill --namespace %s %d' % (entry['protocol'], entry['port']) for entry in entries]
    raise CollisionGuardError('unknown cleanup method %r (known: %s)' % (method, ', '.join(CLEANUP_METHODS)))


def render_port_cleanup(unit, entries, cleanup=None, socket=None):
    """Return the text of ``port-cleanup.conf`` for one service and its registry entries.

    With ``socket``, the drop-in of that socket unit, which binds the service's
    port before the service runs: its start frees the port the same way.
    """
    cleanup = dict(DEFAULT_CLEANUP, **(cleanup or {}))
    ports = sorted((entry for entry in entries if entry['service'] == unit),
                   key=lambda entry: (entry['protocol'], entry['port'], entry.get('address') or ''))
    if not ports:
        raise CollisionGuardError('no registry entry for %s' % unit)
    # A socket unit's start comes before the service's, whose own start clears its PID files.
    pid_files = [] if socket else unit_settings(entries, unit)['pid_files']
    if socket:
        purpose = 'Frees the registered ports of %s before %s binds them.' % (unit, socket)
    elif pid_files:
        purpose = 'Frees the registered ports of %s, and clears its stale PID files, before every start.' % unit
    else:
        purpose = 'Frees the registered ports of %s before every start.' % unit
    lines = [managed_header(purpose), '[Socket]' if socket else '[Service]']
    for command in _cleanup_command(unit, ports, cleanup, starting=socket, pid_files=pid_files):
        lines.append('ExecStartPre=%s' % command)
    return '\n'.join(lines) + '\n'


def render_private_tmp(unit):
    """Return the text of ``private-tmp.conf``: a /tmp and /var/tmp of the unit's own."""
    return '\n'.join([
        managed_header('Gives %s a /tmp and /var/tmp of its own, so its fixed paths there never meet another '
                       'service\'s.' % unit),
        '[Service]', 'PrivateTmp=yes']) + '\n'


# The exits each Restart= value restarts after (systemd.service(5), table 2).
RESTART_CASES = {
    'no': frozenset(),
    'on-success': frozenset(['clean']),
    'on-failure': frozenset(['code', 'signal', 'timeout', 'watchdog']),
    'on-abnormal': frozenset(['signal', 'timeout', 'watchdog']),
    'on-abort': frozenset(['signal']),
    'on-watchdog': frozenset(['watchdog']),
    'always': frozenset(['clean', 'code', 'signal', 'timeout', 'watchdog']),
}


def restart_to_write(wanted, own):
    """``(value, note)``: the Restart= to write for a unit whose files say ``own``, or '' to write none.

    A wanted value that would not restart the unit after an exit its own
    value restarts it after would weaken it, so none is written, and the note says why.
    """
    if not wanted:
        return '', None
    own = own or 'no'
    if RESTART_CASES.get(own, frozenset()) <= RESTART_CASES[wanted]:
        return wanted, None
    return '', 'keeps its own Restart=%s: Restart=%s would not restart it after some exits that it does' % (own, wanted)


def render_restart_policy(unit, policy, systemd_version, restart=None):
    """Return the text of ``restart-policy.conf``: restarts that back off instead of giving up.

    ``restart`` is the Restart= to write ('' for none); by default, the policy's.
    """
    restart = policy['restart'] if restart is None else restart
    lines = [managed_header('Keeps %s retrying its start instead of giving up.' % unit), '[Unit]',
             'StartLimitIntervalSec=%s' % timespan(policy['start_limit_interval_sec']),
             'StartLimitBurst=%d' % policy['start_limit_burst'],
             '', '[Service]']
    if restart:
        lines.append('Restart=%s' % restart)
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
                 unit_dir=DEFAULT_UNIT_DIR, sockets=None, own_restart=None):
    """The drop-ins each present unit should have, and the entries whose unit is absent.

    ``sockets`` maps each present service to the socket units that trigger
    it on a registered port; they get a ``port-cleanup.conf`` of their own.
    ``own_restart`` maps a service to the Restart= its own files set, which
    an entry's ``restart`` or the policy's never weakens.

    Returns ``(dropins, absent, notes)``. ``dropins`` maps each drop-in path
    to its unit and desired content; content None means the file should not
    exist (a cleanup method of ``none``, no restart policy, or no entry of the
    unit with ``private_tmp``), so a managed
    copy left by an earlier run is removed. ``notes`` maps a unit to why its
    Restart= was left alone.
    """
    cleanup = dict(DEFAULT_CLEANUP, **(cleanup or {}))
    sockets = sockets or {}
    own_restart = own_restart or {}
    dropins = {}
    notes = {}
    for unit in units_in_order(registry):
        if unit not in present_units:
            continue
        if cleanup['method'] == 'none' and unit_settings(registry, unit)['pid_files']:
            raise CollisionGuardError('%s: pid_files are cleared by the eviction helper, which the none method does '
                                      'not run; use the evict method for entries with pid_files' % unit)
        dropins[dropin_path(unit, PORT_CLEANUP_NAME, unit_dir)] = {
            'unit': unit,
            'content': None if cleanup['method'] == 'none' else render_port_cleanup(unit, registry, cleanup),
        }
        for socket in sockets.get(unit, []):
            dropins[dropin_path(socket, PORT_CLEANUP_NAME, unit_dir)] = {
                'unit': socket,
                'content': None if cleanup['method'] == 'none' else render_port_cleanup(unit, registry, cleanup, socket),
            }
        content = None
        if restart_policy:
            wanted = unit_restart(registry, unit) or restart_policy['restart']
            restart, note = restart_to_write(wanted, own_restart.get(unit, ''))
            if note:
                notes[unit] = note
            content = render_restart_policy(unit, restart_policy, systemd_version, restart)
        dropins[dropin_path(unit, RESTART_POLICY_NAME, unit_dir)] = {'unit': unit, 'content': content}
        dropins[dropin_path(unit, PRIVATE_TMP_NAME, unit_dir)] = {
            'unit': unit,
            'content': render_private_tmp(unit) if unit_settings(registry, unit)['private_tmp'] else None,
        }
    absent = [entry for entry in registry if entry['service'] not in present_units]
    return dropins, absent, notes


def unit_restart(registry, unit):
    """The Restart= the entries of ``unit`` ask for, or ''.

    Validation makes the entries of one name agree, but an alias and the
    unit it names, or a glob and a name, only meet on the host: entries that
    resolve to one unit and ask for different values are a CollisionGuardError.
    """
    wanted = sorted(set(entry['restart'] for entry in registry if entry['service'] == unit and entry.get('restart')))
    if len(wanted) > 1:
        raise CollisionGuardError('%s is given different restart values here (%s), by entries that name it '
                                  'differently; a unit has one Restart=' % (unit, ', '.join(wanted)))
    return wanted[0] if wanted else ''


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
