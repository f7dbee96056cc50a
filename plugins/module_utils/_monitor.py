# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""The ownership monitor: the checker the harden role's timer runs on each host.

It judges ownership with ``_ownership.ownership_findings``, as
port_ownership_info does, then writes Prometheus textfile metrics (a temp
file, then a rename, so node_exporter never reads half a file), logs a
warning-priority journal line per conflict and, when configured, runs an
alert command with the conflicts as JSON on its stdin.

It also says whether the guard itself can run on this host: the programs and
files the collection's ``port-cleanup.conf`` drop-ins run (``guard_problems``).

And whether prevention still holds: where harden armed ``SocketBindDeny=`` on
slices (its record in ``monitor.json``), a probe bind from each slice must be
refused, and a registered port held from inside an armed unit is a bypass.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import glob
import json
import os
import re
import shlex
import sys
import time
import zipfile

from ansible_collections.qwf.collision_guard.plugins.module_utils import _journal, _prevention
from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint
from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import (
    DEFAULT_UNIT_DIR, HELPER_NAME, PORT_CLEANUP_NAME, is_managed)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import write_atomically
from ansible_collections.qwf.collision_guard.plugins.module_utils._imports import missing_modules, module_member
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import CRITICAL, OK, WARNING, gather_findings
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import REGISTRY_PATH, load_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import cgroup_root, read_text
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import run_systemctl, show_properties
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import cgroup_path, strip_cgroup_root
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import UNIT_TYPES, unit_name_problem

METRICS_FILE = 'collision_guard.prom'
DEFAULT_TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
CONFIG_PATH = '/etc/collision-guard/monitor.json'
ALERT_TIMEOUT_SEC = 30
SYSTEMCTL_TIMEOUT_SEC = 20
JOURNAL_IDENTIFIER = 'collision-guard-check'
# The cmdline label of the world-readable metrics: enough for the program and
# its first arguments, which tell one squatter from another; the tail, where
# options such as --api-token=... tend to sit, is left out, and a series stays
# small however long the command line.
METRICS_CMDLINE_MAX = 128
# The command lines in journal lines and in the alert's payload, which only
# root and the alert command see: long enough to read, bounded so that one
# squatter cannot flood the journal or the alert.
CMDLINE_MAX = 1024
CUT_MARK = '...'
# Where systemd looks for a command given without a path (systemd.exec(5), "Command lines").
SYSTEMD_EXEC_PATH = ('/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin')
# The prefixes an Exec line's command may carry ("-", "+", "!", "@", ":", "|").
EXEC_PREFIXES = '-+!@:|'
# Prevention as harden left it (its bind_deny result), in monitor.json.
PREVENTION_STATES = ('active', 'unavailable', 'degraded', 'off')
# Where harden armed it; a probe or a bypass matters only there.
ARMED_STATES = ('active', 'degraded')
# One probe bind per armed slice and run; a deny answers in microseconds, a stuck systemd-run is cut off.
PROBE_TIMEOUT_SEC = 10
# A SocketBindDeny= rule as systemd writes it: [ipv4:|ipv6:][tcp:|udp:]PORT[-PORT] (or "any").
_RULE = re.compile(r'^(?:(?P<family>ipv4|ipv6):)?(?:(?P<protocol>tcp|udp):)?(?P<low>\d{1,5})(?:-(?P<high>\d{1,5}))?\Z')
# The cgroup path components of units; slices nest (user.slice/user-1500.slice), a unit's own subtree is its alone.
_CGROUP_UNIT = re.compile(r'^[^/]+\.(%s)\Z' % '|'.join(UNIT_TYPES))


def escape_label(value):
    """A label value in the Prometheus text format: backslash, double quote and newline escaped."""
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def cut_text(text, limit):
    """``text`` at most ``limit`` characters long, ending in ``...`` when it was cut."""
    if len(text) <= limit:
        return text
    return text[:max(limit - len(CUT_MARK), 0)] + CUT_MARK


def cut_args(args, limit):
    """``(args, cut)``: the arguments whose space-joined text is at most ``limit`` characters, the last one cut short."""
    args = [str(arg) for arg in args or []]
    if len(' '.join(args)) <= limit:
        return args, False
    kept, used = [], 0
    room = limit - len(CUT_MARK)
    for arg in args:
        needed = len(arg) + (1 if kept else 0)
        if used + needed <= room:
            kept.append(arg)
            used += needed
            continue
        left = room - used - (1 if kept else 0)
        if left > 0:
            kept.append(arg[:left] + CUT_MARK)
        elif kept:
            kept[-1] += CUT_MARK
        else:
            kept.append(CUT_MARK)
        break
    return kept, True


def cmdline_text(cmdline, limit):
    return cut_text(' '.join(str(arg) for arg in cmdline or []), limit)


def _key(finding):
    """The labels of one registered port; ``address`` is empty for an entry that claims every address.

    node_exporter wants one set of label names per metric family, so it is always there.
    """
    return [('port', finding['port']), ('protocol', finding['protocol']), ('service', finding['service']),
            ('address', finding.get('address') or '')]


def _labels(pairs):
    return '{%s}' % ','.join('%s="%s"' % (name, escape_label(value)) for name, value in pairs)


def _unique(findings):
    """The findings with one per label set: node_exporter rejects a whole textfile that repeats a series."""
    seen = set()
    unique = []
    for finding in findings:
        key = tuple(_key(finding))
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique


def _holder_labels(finding, holder, cmdline):
    # The cmdline label is always there, empty when left out, so the family keeps one set of label names.
    return _key(finding) + [
        ('pid', holder['pid'] if holder['pid'] is not None else ''), ('holder_unit', holder['unit'] or ''),
        ('name', holder['name'] or ''), ('user', holder['user'] or ''),
        ('cmdline', cmdline_text(holder['cmdline'], METRICS_CMDLINE_MAX) if cmdline else '')]


def render_metrics(findings, checked_at, guard_ok=True, cmdline=True, prevention_active=False):
    """The textfile for node_exporter: one series per registered port, the holder of each conflict, the guard's state.

    ``cmdline`` False leaves the holders' cmdline label empty. ``prevention_active`` is ``prevention_status``'s
    ``active``.
    """
    findings = _unique(findings)
    lines = [
        '# HELP collision_guard_port_owner_ok 1 when the registered unit alone holds its port, else 0.',
        '# TYPE collision_guard_port_owner_ok gauge',
    ]
    for finding in findings:
        key = _key(finding)
        lines.append('collision_guard_port_owner_ok%s %d' % (_labels(key), finding['severity'] == OK))
    lines += [
        '# HELP collision_guard_port_listening 1 when anything listens on the registered port, else 0.',
        '# TYPE collision_guard_port_listening gauge',
    ]
    for finding in findings:
        key = _key(finding)
        lines.append('collision_guard_port_listening%s %d' % (_labels(key), finding['severity'] != WARNING))
    lines += [
        '# HELP collision_guard_port_holder_info A process other than the registered unit holding a registered port.',
        '# TYPE collision_guard_port_holder_info gauge',
    ]
    for finding in findings:
        for holder in finding['holders']:
            lines.append('collision_guard_port_holder_info%s 1' % _labels(_holder_labels(finding, holder, cmdline)))
    lines += [
        '# HELP collision_guard_guard_ok 1 when the eviction helper, the code it imports and its interpreter are all '
        'there, else 0.',
        '# TYPE collision_guard_guard_ok gauge',
        'collision_guard_guard_ok %d' % bool(guard_ok),
        '# HELP collision_guard_prevention_active 1 when harden armed SocketBindDeny= here and a probe bind from each '
        'armed slice was refused just now, else 0.',
        '# TYPE collision_guard_prevention_active gauge',
        'collision_guard_prevention_active %d' % bool(prevention_active),
        '# HELP collision_guard_last_check_timestamp_seconds When the ownership check last ran.',
        '# TYPE collision_guard_last_check_timestamp_seconds gauge',
        'collision_guard_last_check_timestamp_seconds %.3f' % checked_at,
    ]
    return '\n'.join(lines) + '\n'


def _holder_text(holder):
    cmdline = json.dumps(cmdline_text(holder['cmdline'], CMDLINE_MAX))
    return 'pid=%s user=%s unit=%s cmdline=%s' % (holder['pid'], holder['user'], holder['unit'] or '-', cmdline)


def conflict_lines(findings):
    """One journal line per critical finding, the holders' command lines quoted and cut to ``CMDLINE_MAX``."""
    return ['conflict port=%s/%s service=%s: %s; %s' % (
        endpoint(finding.get('address'), finding['port']), finding['protocol'], finding['service'], finding['message'],
        '; '.join(_holder_text(holder) for holder in finding['holders']))
        for finding in findings if finding['severity'] == CRITICAL]


def load_config(path):
    """The monitor's settings the role writes, defaults filled in.

    ``{"alert_command": [argv...], "metrics_cmdline": true, "prevention": {...}}``; the defaults when the file
    is absent. ``prevention`` is ``prevention_record``'s.
    """
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError):
        config = {}
    except ValueError as error:
        raise CollisionGuardError('cannot read %s: %s' % (path, error))
    if not isinstance(config, dict):
        raise CollisionGuardError('%s: not a JSON object' % path)
    command = config.get('alert_command') or []
    if not isinstance(command, list) or not all(isinstance(arg, str) for arg in command):
        raise CollisionGuardError('%s: alert_command must be a list of strings' % path)
    metrics_cmdline = config.get('metrics_cmdline', True)
    if not isinstance(metrics_cmdline, bool):
        raise CollisionGuardError('%s: metrics_cmdline must be true or false, not %s' % (path, json.dumps(metrics_cmdline)))
    return {'alert_command': command, 'metrics_cmdline': metrics_cmdline,
            'prevention': prevention_record(config.get('prevention'), path)}


def proc_hides_processes(mountinfo):
    """True when ``/proc`` is mounted with ``hidepid`` (``/proc/self/mountinfo``'s text): users may not see each other's."""
    hidden = False
    for line in mountinfo.splitlines():
        fields = line.split(' ')
        if '-' not in fields[6:]:
            continue
        separator = fields.index('-', 6)
        if len(fields) < separator + 4 or fields[4] != '/proc' or fields[separator + 1] != 'proc':
            continue
        # The last /proc mount is the one on top.
        options = dict((option.split('=', 1) + [''])[:2] for option in fields[separator + 3].split(','))
        hidden = options.get('hidepid', '0') not in ('0', 'off')
    return hidden


def show_cmdlines(config, mountinfo_path='/proc/self/mountinfo'):
    """Whether the world-readable metrics may carry command lines: not when switched off, nor when /proc hides them."""
    if not config.get('metrics_cmdline', True):
        return False
    try:
        with open(mountinfo_path) as handle:
            return not proc_hides_processes(handle.read())
    except (IOError, OSError):
        return True


def alert_payload(findings):
    """The alert command's stdin: the critical findings as a JSON list, each holder's cmdline cut to ``CMDLINE_MAX``.

    A holder's ``cmdline_cut`` says whether its command line was cut.
    """
    conflicts = []
    for finding in findings:
        if finding['severity'] != CRITICAL:
            continue
        holders = []
        for holder in finding['holders']:
            cmdline, cut = cut_args(holder.get('cmdline'), CMDLINE_MAX)
            holders.append(dict(holder, cmdline=cmdline, cmdline_cut=cut))
        conflicts.append(dict(finding, holders=holders))
    return (json.dumps(conflicts, sort_keys=True) + '\n').encode('utf-8')


def _kill_group(process):
    import signal
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    process.wait()


def run_alert(command, findings, log, timeout=ALERT_TIMEOUT_SEC):
    """Run the alert command without a shell, the conflicts as JSON on its stdin (``alert_payload``).

    Never in its arguments or environment, where a long command line would make
    execve fail. It gets ``timeout`` seconds, then it and its process group are
    killed. Only the command's name and how it ended are logged, since its
    arguments may hold a token; its output is discarded. True when it exited 0.
    """
    import subprocess
    name = os.path.basename(command[0])
    # Where the conflicts once were: an alert script that still reads it finds it unset, never stale.
    environment = dict((key, value) for key, value in os.environ.items() if key != 'COLLISION_GUARD_CONFLICTS')
    try:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=environment, close_fds=True, start_new_session=True)
    except OSError as error:
        log(_journal.ERROR, 'alert command %s could not run: %s' % (name, error.strerror or error))
        return False
    try:
        process.communicate(alert_payload(findings), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        log(_journal.ERROR, 'alert command %s did not finish within %d s and was killed' % (name, timeout))
        return False
    log(_journal.NOTICE if process.returncode == 0 else _journal.ERROR,
        'alert command %s exited %d' % (name, process.returncode))
    return process.returncode == 0


def helper_problems(helper):
    """What keeps the eviction helper at ``helper`` from running: it missing, damaged, or lacking a module it imports.

    The helper is one file, a zip application of its ``__main__.py`` and the
    collection's module_utils; each import is followed inside the archive.
    """
    if not os.path.isfile(helper):
        return ['%s is missing' % helper]
    try:
        with zipfile.ZipFile(helper) as archive:
            damaged = archive.testzip()
            if damaged:
                return ['%s is damaged: %s in it fails its checksum' % (helper, damaged)]
            members = set(archive.namelist())
            if '__main__.py' not in members:
                return ['%s is a zip archive without __main__.py, not the collection\'s helper' % helper]

            def read_member(name):
                member = module_member(name)
                return archive.read(member) if member in members else None

            dummy_needed, missing = missing_modules(archive.read('__main__.py'), read_member)
    except zipfile.BadZipfile:
        return ['%s is not the collection\'s helper: not a zip application (harden installs it as one)' % helper]
    except SyntaxError as error:
        return ['%s holds a file that cannot be read as Python: %s' % (helper, error)]
    except (IOError, OSError, RuntimeError, ValueError) as error:
        return ['%s cannot be read: %s' % (helper, error)]
    return ['%s lacks %s, which the eviction helper imports' % (helper, module_member(name)) for name in missing]


def program_problem(program):
    """Why ``program`` cannot be run (a path, or a name systemd looks up), or None."""
    if '/' in program:
        candidates = [program]
    else:
        candidates = [os.path.join(directory, program) for directory in SYSTEMD_EXEC_PATH]
    if any(os.path.isfile(path) and os.access(path, os.X_OK) for path in candidates):
        return None
    if '/' not in program:
        return '%s is not installed' % program
    return '%s is missing' % program if not os.path.exists(program) else '%s cannot be run' % program


def _split(command):
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _is_helper(word):
    return os.path.isabs(word) and os.path.basename(word) == HELPER_NAME


def exec_words(line):
    """The words of an ``ExecStartPre=`` value, without its prefixes.

    When a shell runs the helper from its script rather than from its
    arguments, the script's words follow in place of the script.
    """
    words = _split(line.split('=', 1)[1].strip().lstrip(EXEC_PREFIXES))
    if any(_is_helper(word) for word in words):
        return words
    flat = []
    for word in words:
        flat.extend(_split(word) if ' ' in word else [word])
    return flat


def cleanup_commands(unit_dir=DEFAULT_UNIT_DIR):
    """``(unit, words)`` for each ``ExecStartPre=`` of the collection's own ``port-cleanup.conf`` drop-ins."""
    commands = []
    for path in sorted(glob.glob(os.path.join(unit_dir, '*.d', PORT_CLEANUP_NAME))):
        try:
            with open(path) as handle:
                content = handle.read()
        except (IOError, OSError):
            continue
        if not is_managed(content):
            continue
        unit = os.path.basename(os.path.dirname(path))[:-len('.d')]
        for line in content.splitlines():
            if line.startswith('ExecStartPre=') and line.split('=', 1)[1].strip():
                commands.append((unit, exec_words(line)))
    return commands


def guard_problems(commands):
    """What keeps the drop-ins' commands from running: the interpreter, the helper or a module file it needs missing.

    ``commands`` is ``cleanup_commands()``. One line per problem, naming the
    units whose starts run it. Empty when nothing is armed.
    """
    needs = {}  # a problem's subject -> the units that need it
    order = []
    for unit, words in commands:
        if not words:
            continue
        helper = next((word for word in words if _is_helper(word)), None)
        programs = [words[0]]
        if helper:
            # The interpreter, when a shell runs the helper: the last absolute path before it.
            before = [word for word in words[:words.index(helper)] if os.path.isabs(word)]
            if before and before[-1] != words[0]:
                programs.append(before[-1])
        subjects = [('program', program) for program in programs] + ([('helper', helper)] if helper else [])
        for subject in subjects:
            if subject not in needs:
                needs[subject] = []
                order.append(subject)
            if unit not in needs[subject]:
                needs[subject].append(unit)
    problems = []
    for kind, subject in order:
        found = [program_problem(subject)] if kind == 'program' else helper_problems(subject)
        units = needs[(kind, subject)]
        users = ', '.join(units[:3]) + (' and %d more units' % (len(units) - 3) if len(units) > 3 else '')
        problems.extend('%s (needed by the port-cleanup.conf of %s)' % (problem, users) for problem in found if problem)
    return problems


def guard_status(unit_dir=DEFAULT_UNIT_DIR):
    """``(guard_ok, problems)`` for this host; never raises: a check that cannot run says so as its problem."""
    try:
        problems = guard_problems(cleanup_commands(unit_dir))
    except Exception as error:  # pylint: disable=broad-except
        # Whatever goes wrong here, the check and the metrics still go ahead.
        problems = ['cannot check the guard: %s' % error]
    return not problems, problems


def guard_table(host_problems):
    """Lines naming each host whose guard is broken and why, for check.yml; none when every guard is whole."""
    rows = [(host, 'BROKEN', problem) for host in sorted(host_problems) for problem in host_problems[host] or []]
    if not rows:
        return []
    rows.insert(0, ('host', 'guard', 'problem'))
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    return [''] + ['%s  %s  %s' % (host.ljust(widths[0]), state.ljust(widths[1]), problem) for host, state, problem in rows]


def prevention_record(value, where=CONFIG_PATH):
    """What harden armed on this host (monitor.json's ``prevention``): ``{'state', 'summary', 'units', 'rules'}``.

    Off when there is none. Never raises: a record that is not valid reads as
    off, with ``problem`` saying why, so the ownership check still goes ahead.
    Its units and rules go to systemd-run as root, so they must be unit names
    and ``SocketBindDeny=`` rules.
    """
    off = {'state': 'off', 'summary': 'off', 'units': [], 'rules': []}
    if value is None:
        return off
    problem = None
    if not isinstance(value, dict):
        problem = 'not a JSON object'
    else:
        state, summary = value.get('state', 'off'), value.get('summary') or value.get('state', 'off')
        units, rules = value.get('units') or [], value.get('rules') or []
        if state not in PREVENTION_STATES:
            problem = 'state must be one of %s, not %s' % (', '.join(PREVENTION_STATES), json.dumps(state))
        elif not isinstance(summary, str):
            problem = 'summary must be a string, not %s' % json.dumps(summary)
        elif not isinstance(units, list) or not all(isinstance(unit, str) for unit in units):
            problem = 'units must be a list of unit names, not %s' % json.dumps(units)
        elif not isinstance(rules, list) or not all(isinstance(rule, str) and _RULE.match(rule) for rule in rules):
            problem = 'rules must be a list of SocketBindDeny= rules such as "tcp:8765", not %s' % json.dumps(rules)
        else:
            named = [(unit, unit_name_problem(unit, types=UNIT_TYPES)) for unit in units]
            problem = '; '.join('units: %s %s' % (json.dumps(unit), why) for unit, why in named if why) or None
    if problem:
        problem = '%s: prevention: %s' % (where, problem)
        return dict(off, summary='off (%s)' % problem, problem=problem)
    return {'state': state, 'summary': summary, 'units': list(units), 'rules': list(rules)}


def rule_covers(rule, protocol, port):
    """Whether a ``SocketBindDeny=`` rule refuses binds on ``port``/``protocol`` (of some address family)."""
    match = _RULE.match(rule)
    if not match or match.group('protocol') not in (None, protocol):
        return False
    low = int(match.group('low'))
    return low <= int(port) <= int(match.group('high') or low)


def _cgroup_name(component):
    # systemd escapes a unit's cgroup name with a leading "_" when it could clash with the kernel's own files.
    return component[1:] if component.startswith('_') else component


def cgroup_placement(path):
    """``(slices, unit)`` of a cgroup path: the slices it lies in, outermost first, and the first unit below them.

    Components before the first unit name are the host's prefix (``/docker/<id>``
    with cgroupns=host). Below the first unit that is not a slice lies that
    unit's own subtree (a user's service manager, a container), whose names
    are its own choice: they are not looked at.
    """
    slices = []
    for component in [part for part in path.split('/') if part]:
        name = _cgroup_name(component)
        if not _CGROUP_UNIT.match(name):
            if slices:
                break
            continue
        if not name.endswith('.slice'):
            return slices, name
        slices.append(name)
    return slices, None


def armed_unit(path, units):
    """The unit of ``units`` that a process in cgroup ``path`` runs inside (a deny on it applies to it), or None."""
    slices, unit = cgroup_placement(path or '')
    for listed in units:
        if listed in slices or listed == unit:
            return listed
    return None


def process_cgroup(pid, root='/', proc='/proc'):
    """The cgroup path of process ``pid`` below this host's ``root`` (``_sockets.cgroup_root``); empty when gone."""
    try:
        return strip_cgroup_root(cgroup_path(read_text(os.path.join(proc, str(pid), 'cgroup')) or ''), root)
    except (IOError, OSError, ValueError):
        return ''


def mark_bypasses(findings, units, rules, cgroup_of):
    """The findings, each critical one whose holder runs inside an armed unit marked as prevention bypassed.

    ``units`` are where binds on the registered ports should be refused, and
    ``rules`` the ``SocketBindDeny=`` rules armed there (None: every
    registered port). ``cgroup_of(pid)`` is a process's cgroup path. Every
    finding gets ``prevention_bypassed``; a holder inside an armed unit gets
    ``inside``, that unit.
    """
    marked = []
    for finding in findings:
        finding = dict(finding, prevention_bypassed=False)
        covered = rules is None or any(rule_covers(rule, finding['protocol'], finding['port']) for rule in rules)
        if finding['severity'] == CRITICAL and units and covered:
            holders, bypassed = [], []
            for holder in finding['holders']:
                unit = armed_unit(cgroup_of(holder['pid']), units) if holder.get('pid') is not None else None
                if unit:
                    holder = dict(holder, inside=unit)
                    bypassed.append('%s (pid %s) inside %s' % (holder['unit'] or holder['name'] or '?', holder['pid'], unit))
                holders.append(holder)
            if bypassed:
                finding.update(holders=holders, prevention_bypassed=True, message=(
                    'prevention bypassed: %s holds it, although SocketBindDeny= there should have refused its bind; %s'
                    % (', '.join(bypassed), finding['message'])))
        marked.append(finding)
    return marked


def probe_verdict(result):
    """``denied``, ``lost`` or ``error``: what one probe bind says of the deny on its slice.

    A bind that failed because the port is in use was not denied: the cgroup
    hook runs before the kernel looks for a holder, so a deny answers EPERM first.
    """
    if result.get('outcome') == 'denied':
        return 'denied'
    if result.get('outcome') in ('allowed', 'bound') or result.get('errno') == errno.EADDRINUSE:
        return 'lost'
    return 'error'


def probe_bind(unit, rule, timeout=PROBE_TIMEOUT_SEC):
    """``_prevention.probe_bind`` with this interpreter."""
    python = sys.executable if sys.executable and os.path.isabs(sys.executable) else '/usr/bin/python3'
    return _prevention.probe_bind(unit, rule, python=python, timeout=timeout)


def prevention_status(record, probe=None, timeout=PROBE_TIMEOUT_SEC):
    """The prevention this host has now: ``(status, lines)``.

    Where harden armed it (``active``), each armed slice is probed once with
    the first rule: a bind from it must be refused. ``status`` is the record
    with ``probes`` and ``active`` (True when every probe was refused; False
    when the record is not active) and, when a probe was not refused or could
    not run, ``state`` degraded and a ``summary`` saying where. ``lines`` are
    ``(priority, text)`` journal lines. A probe that fails is reported, never raised.
    """
    probe = probe or probe_bind
    status = dict(record, probes=[], active=False)
    if record['state'] != 'active':
        return status, []
    rule = record['rules'][0] if record['rules'] else None
    lines, lost, failed = [], [], []
    for unit in [unit for unit in record['units'] if unit.endswith('.slice')] if rule else []:
        try:
            result = dict(probe(unit, rule, timeout=timeout))
        except Exception as error:  # pylint: disable=broad-except
            # A probe that cannot run says so; the ownership check and the metrics still go ahead.
            result = {'unit': unit, 'rule': rule, 'outcome': 'error', 'errno': None, 'sec': None,
                      'detail': '%s: %s' % (type(error).__name__, error)}
        status['probes'].append(result)
        verdict = probe_verdict(result)
        detail = ' '.join(str(result.get('detail') or result.get('outcome')).split())
        if verdict == 'lost':
            lost.append(unit)
            lines.append((_journal.WARNING, 'prevention lost on %s: a test bind of %s from it was not refused (%s); '
                          'systemd may have detached it at a daemon-reload; the next harden run re-arms it'
                          % (unit, rule, cut_text(detail, CMDLINE_MAX))))
        elif verdict == 'error':
            failed.append(unit)
            lines.append((_journal.ERROR, 'cannot tell whether prevention holds on %s: the test bind of %s did not '
                          'run: %s' % (unit, rule, cut_text(detail, CMDLINE_MAX))))
    reasons = ['lost on %s: a test bind was not refused; the next harden run re-arms it' % ', '.join(lost)] if lost else []
    reasons.extend(['cannot probe %s' % ', '.join(failed)] if failed else [])
    if reasons:
        status.update(state='degraded', summary='degraded (%s)' % '; '.join(reasons))
    else:
        status['active'] = True
    return status, lines


def check_prevention(record, findings, units=None, probe=None, proc='/proc'):
    """``(status, findings, lines)``: ``prevention_status``, and the findings with ``mark_bypasses``.

    A bypass counts only where harden armed the deny (state active or
    degraded), in ``units`` (the record's when None), for the record's rules.
    """
    status, lines = prevention_status(record, probe)
    if record['state'] not in ARMED_STATES:
        return status, [dict(finding, prevention_bypassed=False) for finding in findings], lines
    root = cgroup_root(proc)
    marked = mark_bypasses(findings, record['units'] if units is None else units, record['rules'] or None,
                           lambda pid: process_cgroup(pid, root, proc))
    return status, marked, lines


def dropin_record(units, unit_dir=DEFAULT_UNIT_DIR):
    """A record of what harden armed, read from the collection's deny drop-ins on ``units``: for a host without one.

    Active where a drop-in is (a probe then says whether it holds), off where none is.
    """
    armed, rules = [], []
    for unit in units:
        try:
            with open(os.path.join(unit_dir, unit + '.d', _prevention.DENY_DROPIN_NAME)) as handle:
                content = handle.read()
        except (IOError, OSError, UnicodeDecodeError):
            continue
        if not is_managed(content):
            continue
        armed.append(unit)
        rules.extend(rule for rule in _prevention.rules_in(content) if _RULE.match(rule) and rule not in rules)
    if not armed:
        return {'state': 'off', 'summary': 'off (no %s on %s)' % (_prevention.DENY_DROPIN_NAME, ', '.join(units)),
                'units': [], 'rules': []}
    return {'state': 'active', 'summary': 'active', 'units': armed, 'rules': rules}


def host_prevention_record(prevent_in, config_path=CONFIG_PATH, unit_dir=DEFAULT_UNIT_DIR):
    """What harden armed here, for port_ownership_info: the monitor's record, else the deny drop-ins on ``prevent_in``.

    Off when ``prevent_in`` is empty: prevention is not wanted.
    """
    if not prevent_in:
        return prevention_record(None)
    try:
        with open(config_path) as handle:
            value = json.load(handle).get('prevention')
    except (IOError, OSError, ValueError, AttributeError):
        value = None
    return prevention_record(value, config_path) if value is not None else dropin_record(prevent_in, unit_dir)


def prevention_table(host_prevention, findings=()):
    """Lines with each host's prevention and each bypass of it, for check.yml; none when no host reports it.

    ``host_prevention`` maps a host to port_ownership_info's ``prevention``;
    ``findings`` are ``fleet_findings``, each with ``host``.
    """
    rows = [(host, (host_prevention[host] or {}).get('summary') or 'off') for host in sorted(host_prevention)]
    if not rows:
        return []
    for finding in findings:
        if finding.get('prevention_bypassed'):
            rows.append((finding.get('host', '?'), 'BYPASSED %s/%s %s: %s' % (
                endpoint(finding.get('address'), finding['port']), finding['protocol'], finding['service'],
                ', '.join('%s pid %s inside %s' % (holder.get('unit') or holder.get('name') or '-', holder.get('pid'),
                                                   holder['inside'])
                          for holder in finding['holders'] if holder.get('inside')))))
    rows.insert(0, ('host', 'prevention'))
    width = max(len(host) for host, dummy in rows)
    return [''] + ['%s  %s' % (host.ljust(width), state) for host, state in rows]


def check(registry, proc='/proc'):
    """This host's findings, gathered as port_ownership_info gathers them, but carrying on when systemd does not answer.

    Returns ``(findings, answered)``; ``answered`` is False when systemd did not say all it was asked.
    """
    deadline = time.monotonic() + SYSTEMCTL_TIMEOUT_SEC
    findings, dummy_unregistered, dummy_complete, dummy_problems, answered = gather_findings(
        registry,
        lambda units, properties: show_properties(units, properties, deadline),
        lambda argv: run_systemctl(argv, deadline) or '',
        proc)
    return findings, answered


def main(argv=None):
    """collision-guard-check [--textfile-dir DIR]: one check, metrics written, conflicts logged."""
    argv = sys.argv[1:] if argv is None else argv
    textfile_dir = argv[argv.index('--textfile-dir') + 1] if '--textfile-dir' in argv[:-1] else DEFAULT_TEXTFILE_DIR
    journal = _journal.Journal(JOURNAL_IDENTIFIER)
    try:
        registry = load_registry(REGISTRY_PATH)
        config = load_config(CONFIG_PATH)
    except CollisionGuardError as error:
        journal.log(_journal.ERROR, error.full_message())
        return 1
    findings, answered = check(registry)
    record = config.get('prevention') or prevention_record(None)
    try:
        prevention, findings, prevention_lines = check_prevention(record, findings)
    except Exception as error:  # pylint: disable=broad-except
        # Prevention is a second line: whatever goes wrong with it, the ownership findings still go out.
        prevention, prevention_lines = {'active': False}, [(_journal.ERROR, 'cannot check prevention: %s' % error)]
    guard_ok, problems = guard_status()
    status = 0
    metrics_path = os.path.join(textfile_dir, METRICS_FILE)
    try:
        # A temp file renamed into place: node_exporter never reads half a file.
        write_atomically(metrics_path, render_metrics(
            findings, time.time(), guard_ok=guard_ok, cmdline=show_cmdlines(config),
            prevention_active=prevention['active']).encode('utf-8'))
    except (CollisionGuardError, IOError, OSError) as error:
        # The journal lines and the alert still go out.
        journal.log(_journal.ERROR, 'cannot write the metrics to %s: %s' % (metrics_path, error))
        status = 1
    for problem in problems:
        journal.log(_journal.ERROR, 'the guard is broken: %s' % problem)
    if record.get('problem'):
        journal.log(_journal.ERROR, 'cannot read what prevention harden armed: %s' % record['problem'])
    for priority, line in prevention_lines:
        journal.log(priority, line)
    for line in conflict_lines(findings):
        journal.log(_journal.WARNING, line)
    if config.get('alert_command') and any(finding['severity'] == CRITICAL for finding in findings):
        run_alert(config['alert_command'], findings, journal.log)
    if not answered:
        # Entries whose unit systemd did not name have no finding, and so no series: say so, and fail.
        journal.log(_journal.ERROR, 'systemd did not answer in time; these registered ports were not checked: %s' % (
            ', '.join(unchecked_entries(registry, findings)) or 'none'))
        status = 1
    return status


def unchecked_entries(registry, findings):
    """The entries of the host's registry that got no finding, as ``service port/protocol`` labels."""
    checked = set((finding['service'], finding['port'], finding['protocol']) for finding in findings)
    return ['%s %s/%s' % (entry['service'], endpoint(entry.get('address'), entry['port']), entry['protocol'])
            for entry in registry if (entry['service'], entry['port'], entry['protocol']) not in checked]
