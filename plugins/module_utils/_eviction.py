# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""The eviction helper: frees a unit's registered ports before it starts.

The harden role installs this file, with the rest of module_utils, on each
host; ``port-cleanup.conf`` runs it as root in ``ExecStartPre``. It sees
sockets through ``_sockets.read_listeners``, as the modules do.

Decide, then act: ``plan_eviction`` judges every holder on fixture-friendly
data, and nothing is signalled unless every holder may be evicted. Each
action leaves a receipt on stderr, which systemd files in the unit's journal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import stat
import sys
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import ERROR, NOTICE, WARNING, Journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint, entry_collides, normalise_address
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    ELSEWHERE,
    OWNER,
    SPARED,
    SQUATTER,
    Judge,
    holder_unit,
    survey,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._pid_files import clear_stale_pid_files
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    PROTOCOLS,
    REGISTRY_PATH,
    entry_label,
    load_registry_document,
    pid_file_problem,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    cgroup_root,
    describe_process,
    holds_any,
    read_listeners,
    read_text,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import run_systemctl, show_properties
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import unit_name_problem

DEFAULT_GRACE_SEC = 2.0
DEFAULT_TIMEOUT_SEC = 10.0

# Exit codes. Anything but 0 fails the unit's start, with the reason in its journal.
# The drop-in's guard script passes these on and turns any other exit into a
# warning and a start that goes on (see _dropin.GUARD_SCRIPT).
EXIT_FREE = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_STILL_HELD = 3
EXIT_RETAKEN = 4

# After an eviction the port is watched this long for a process that takes it
# right back, after the eviction's last read. A shell loop respawning a Python
# squatter re-binds in 30-90 ms (170 ms at most on a host loaded 4 times over
# its cores), so this catches it with room to spare, and it is added only to a
# start that evicted; the first newcomer ends the watch. A slower respawn
# loses the race to the service, or is named on the next start (see STATE_PATH).
SETTLE_SEC = 0.3
# A socket left without a process (its owner has just exited) is waited for
# this long before it is blamed on a newcomer.
ORPHAN_SOCKET_SEC = 1.0
# Sockets with no process that still keep a port: a listening or bound one.
# A closing connection (TIME-WAIT and the like) is nobody's, and never retaken.
_HELD_STATES = ('LISTEN', 'UNCONN')

# What the helper remembers of its evictions across starts, per port (a fixed
# path, never an argument: the file is replaced as root). A holder
# respawned by the parent of a process evicted from the port less than
# RESPAWN_MEMORY_SEC ago is named as retaken and not killed again: killing a
# respawning loop at every retry of the start would only feed it.
STATE_PATH = '/run/collision-guard/evictions.json'
RESPAWN_MEMORY_SEC = 60
STATE_KEEP_SEC = 3600
STATE_MAX_BYTES = 1 << 20

SIGNAL_NAMES = {signal.SIGTERM: 'SIGTERM', signal.SIGKILL: 'SIGKILL'}
JOURNAL_IDENTIFIER = 'collision-guard-evict'


def parse_target(text):
    """``8765/tcp``, ``127.0.0.2:53/udp`` or ``[::1]:53/udp`` -> (port, protocol, address or None).

    A bare port means tcp; CollisionGuardError when malformed.
    """
    where, dummy, protocol = text.partition('/')
    protocol = protocol or 'tcp'
    address = None
    if ':' in where:
        address_text, dummy, where = where.rpartition(':')
        address, problem = normalise_address(address_text)
        # An IPv6 address is written in brackets, as endpoint() writes it, so
        # that ::1:53 is never read as ::1 port 53; an IPv4 one is not.
        if not problem and (':' in address) != (address_text.startswith('[') and address_text.endswith(']')):
            problem = 'is not an IPv4 address, or an IPv6 address in brackets as [::1]'
        if problem:
            raise CollisionGuardError('%r: %r %s' % (text, address_text, problem))
    if not where.isdigit() or not 1 <= int(where) <= 65535:
        raise CollisionGuardError('%r: the port is not an integer in 1-65535' % text)
    if protocol not in PROTOCOLS:
        raise CollisionGuardError('%r: the protocol is not one of %s' % (text, ', '.join(PROTOCOLS)))
    return int(where), protocol, address


def target_entries(service, targets, registry):
    """The registry entries of ``service`` behind each target, as the judgement needs them.

    The target's own address wins: it is what the drop-in was written for.
    """
    entries = []
    for port, protocol, address in targets:
        known = [entry for entry in registry if entry['service'] == service
                 and (entry['port'], entry['protocol'], entry['address']) == (port, protocol, address)]
        entries.append(known[0] if known else {'service': service, 'port': port, 'protocol': protocol,
                                               'address': address, 'evict_holders': []})
    return entries


def _refusal(holder, reason, entry):
    return {'holder': holder, 'reason': reason, 'port': entry_label(entry)}


def _how_to_evict(holder, view, reason):
    """('signal' | 'stop-unit', reason) for an unregistered holder; ``reason`` is the judgement's."""
    unit = holder.get('unit')
    if unit and not holder.get('user_manager') and unit.endswith('.service') \
            and view.get(unit, 'MainPID') == str(holder['pid']) and view.get(unit, 'Restart', 'no') not in ('', 'no'):
        # Killing a supervised main process only makes systemd start it again.
        return 'stop-unit', '%s would restart it (Restart=%s)' % (unit, view.get(unit, 'Restart'))
    return 'signal', reason


# When a socket collides with several entries (one port on several addresses),
# the most cautious verdict wins.
_CAUTION = {SPARED: 0, SQUATTER: 1, OWNER: 2}


def judge_holder(judge, entries, holder):
    """``(verdict, reason, entry)`` of one socket against the ``entries`` on its port; None when it collides with none."""
    judged = []
    for entry in entries:
        if (entry['port'], entry['protocol']) == (holder['port'], holder['protocol']):
            verdict, reason = judge.verdict(entry, holder)
            if verdict != ELSEWHERE:
                judged.append((_CAUTION[verdict], len(judged), verdict, reason, entry))
    if not judged:
        return None
    dummy_caution, dummy_index, verdict, reason, entry = min(judged)
    return verdict, reason, entry


def plan_eviction(listeners, entries, starting, judge):
    """Decide what to do with every process holding one of the ports of ``entries`` before ``starting`` starts.

    ``listeners`` are ``read_listeners`` entries, each with ``netns`` added.
    ``judge`` is the ``_ownership.Judge`` of this host; its verdicts decide:
    owners are kept, except the processes of ``starting`` itself while it
    is not running (left over from an earlier run), squatters are evicted,
    spared holders refused. Sockets on addresses that collide with no entry
    are left alone.

    Returns ``{'evict': [...], 'refuse': [...], 'keep': [...]}``, each item
    with the ``holder``, the ``reason`` and the ``port`` (the entry's label,
    as receipts name it). ``evict`` holds one item per process, with
    ``how``. It is empty whenever ``refuse`` is not: a holder that may not
    be killed keeps the port busy whatever happens to the others, so no one
    is killed.
    """
    view = judge.view
    plan = {'evict': [], 'refuse': [], 'keep': []}
    by_socket = {}
    for holder in listeners:
        by_socket.setdefault(holder['inode'], []).append(holder)
    for inode in sorted(by_socket):
        for holder in by_socket[inode]:
            judged = judge_holder(judge, entries, holder)
            if judged is None:
                continue
            verdict, reason, entry = judged
            if verdict == SPARED:
                plan['refuse'].append(_refusal(holder, reason, entry))
            elif verdict == OWNER and holder['pid'] != 1 and holder.get('unit') == starting \
                    and not view.active(starting):
                plan['evict'].append({'holder': holder, 'how': 'signal', 'port': entry_label(entry), 'leftover': True,
                                      'reason': 'left over from an earlier run of %s' % starting})
            elif verdict == OWNER:
                plan['keep'].append({'holder': holder, 'reason': reason, 'port': entry_label(entry)})
            else:
                how, why = _how_to_evict(holder, view, reason)
                plan['evict'].append({'holder': holder, 'how': how, 'reason': why, 'port': entry_label(entry)})
    seen = set()
    evict = []
    for item in plan['evict']:
        if item['holder']['pid'] not in seen:
            seen.add(item['holder']['pid'])
            evict.append(item)
    plan['evict'] = [] if plan['refuse'] else evict
    return plan


def plan_start(listeners, service, starting, targets, judge):
    """``plan_eviction`` for a start of ``starting`` (``service`` itself, or its socket unit when given), on ``targets``.

    Both units are judged under their canonical names. Returns ``(plan, entries)``.
    """
    view = judge.view
    entries = target_entries(view.canonical(service), targets, judge.entries)
    return plan_eviction(listeners, entries, view.canonical(starting or service), judge), entries


def colliding(listeners, targets):
    """The ``listeners`` that collide with one of ``targets`` (the others are on another address)."""
    return [holder for holder in listeners
            if any((port, protocol) == (holder['port'], holder['protocol']) and entry_collides(address, holder)
                   for port, protocol, address in targets)]


def escalation(pending, started, now, grace_sec, deadline, killed):
    """The next step while evicted processes still hold the port.

    ``done`` when none is left, ``give-up`` at the deadline, ``kill`` (send
    SIGKILL) once the grace period has passed, else ``wait``.
    """
    if not pending:
        return 'done'
    if now >= deadline:
        return 'give-up'
    if not killed and now - started >= grace_sec:
        return 'kill'
    return 'wait'


def quote(value):
    """Text a squatter controls (its command line), made safe for one journal line."""
    return json.dumps(value)


def receipt(event, port_label, holder, **fields):
    """One key=value journal line about one process."""
    parts = [event, 'port=%s' % port_label, 'pid=%s' % holder.get('pid'),
             'user=%s' % (holder.get('user') or '?'), 'unit=%s' % (holder_unit(holder) or '-')]
    for key in sorted(fields):
        text = str(fields[key])
        # A value that could end the line or fake another key is quoted (a parent's command line, say).
        parts.append('%s=%s' % (key, quote(text) if not text or not text.isprintable() or ' ' in text or '"' in text
                                else text))
    parts.append('cmdline=%s' % quote(' '.join(holder.get('cmdline') or [holder.get('name') or '?'])))
    return ' '.join(parts)


def netns_of(pid, proc='/proc'):
    """The network namespace of process ``pid`` (``self`` for this one), as ``net:[inode]``; None when unreadable."""
    try:
        return os.readlink(os.path.join(proc, str(pid), 'ns', 'net'))
    except OSError:
        return None


def read_holders(targets, proc='/proc'):
    """Every process (or none, for a kernel socket) holding a socket on the port of one of ``targets``.

    Listening sockets, and on TCP ports those that hold the port without
    listening and would fail the service's bind (``_sockets.blocks_bind``).
    Sockets on other addresses are read too: whether they collide is the
    judgement's. ``netns`` is the socket's network namespace: the one whose
    table this helper read, whatever namespace its process moved to since.
    """
    ports = [(port, protocol) for port, protocol, dummy_address in targets]
    # One read for all targets, of only their protocols' tables.
    protocols = set(protocol for dummy_port, protocol in ports)
    found, dummy_complete = read_listeners(protocol=protocols.pop() if len(protocols) == 1 else None,
                                           targets=set(ports), proc=proc,
                                           bound_ports=set(port for port, protocol in ports if protocol == 'tcp'))
    # In the order of ``targets``, which the receipts follow.
    listeners = sorted(found, key=lambda holder: ports.index((holder['port'], holder['protocol'])))
    socket_netns = netns_of('self', proc)
    for holder in listeners:
        holder['netns'] = socket_netns
    return listeners


def judge_for(registry, never_evict, listeners, deadline, proc='/proc'):
    """This host's ``Judge``, from the registry and systemd, asked only about the holders found."""
    found = survey(registry, lambda units, properties: show_properties(units, properties, deadline),
                   lambda argv: run_systemctl(argv, deadline), proc=proc, listeners=listeners)
    judge = Judge(found['entries'], found['view'], never_evict, host_netns=netns_of(1, proc), absent=found['absent'])
    judge.systemd_answered = found['answered']
    return judge


def stale_targets(service, targets, registry):
    """The targets the registry no longer gives ``service``: a drop-in left by an earlier registry."""
    return [(port, protocol, address) for port, protocol, address in targets
            if not any((entry['service'], entry['port'], entry['protocol'], entry['address'])
                       == (service, port, protocol, address) for entry in registry)]


def holds_socket(pid, inodes, proc='/proc'):
    """Whether the process still has one of ``inodes`` open in any thread's fd table (False once it exited)."""
    return holds_any(pid, inodes, proc)


class Target(object):
    """One process being evicted, addressed by pidfd where the kernel has it, so a reused pid is never hit."""

    def __init__(self, item, inodes):
        self.item = item
        self.holder = item['holder']
        self.inodes = inodes
        self.pidfd = None
        self.signals = []
        self.outcome = None
        if hasattr(os, 'pidfd_open'):
            try:
                self.pidfd = os.pidfd_open(self.holder['pid'])
            except OSError:
                self.pidfd = None

    def send(self, signum):
        self.signals.append(SIGNAL_NAMES[signum])
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.holder['pid'], signum)
        except OSError:
            pass  # it exited meanwhile

    def close(self):
        if self.pidfd is not None:
            os.close(self.pidfd)


def carry_out(plan, unit, grace_sec, deadline, journal, proc='/proc', poll_sec=0.005):
    """Evict the planned processes: SIGTERM (or stop their unit), SIGKILL after the grace period.

    Returns the targets that still hold the port at the deadline.
    """
    all_inodes = dict((item['holder']['pid'], set()) for item in plan['evict'])
    for item in plan['evict']:
        all_inodes[item['holder']['pid']].add(item['holder']['inode'])
    targets = []
    for item in plan['evict']:
        target = Target(item, all_inodes[item['holder']['pid']])
        # The pid may have been reused since it was read; check after pinning it.
        if holds_socket(target.holder['pid'], target.inodes, proc):
            targets.append(target)
    started = time.monotonic()
    for target in targets:
        label = target.item['port']
        if target.item['how'] == 'stop-unit':
            journal.log(NOTICE, receipt('stopping', label, target.holder, action='systemctl stop',
                                        reason=target.item['reason']))
            target.signals.append('systemctl stop')
            run_systemctl(['systemctl', 'stop', '--no-block', '--', target.holder['unit']], deadline)
        else:
            journal.log(NOTICE, receipt('evicting', label, target.holder, signal='SIGTERM',
                                        reason=target.item['reason'], start_of=unit))
            target.send(signal.SIGTERM)
    pending = list(targets)
    killed = False
    while True:
        now = time.monotonic()
        for target in list(pending):
            if not holds_socket(target.holder['pid'], target.inodes, proc):
                target.outcome = 'released the port after %s in %.2f s' % (target.signals[-1], now - started)
                pending.remove(target)
        step = escalation(pending, started, now, grace_sec, deadline, killed)
        if step == 'done' or step == 'give-up':
            break
        if step == 'kill':
            killed = True
            for target in pending:
                target.send(signal.SIGKILL)
        time.sleep(poll_sec)
    for target in pending:
        target.outcome = 'still holds the port after %s' % ', '.join(target.signals)
    for target in targets:
        priority = WARNING if target in pending else NOTICE
        journal.log(priority, receipt('evicted' if target not in pending else 'failed', target.item['port'],
                                      target.holder, signal='+'.join(target.signals), outcome=target.outcome))
        target.close()
    return pending


def process_start(pid, proc='/proc'):
    """When process ``pid`` started (clock ticks after boot, from /proc/PID/stat), or None once it is gone.

    With its pid, it names one process for good: a pid is reused, the pair is not.
    """
    text = read_text(os.path.join(proc, str(pid), 'stat')) if pid else None
    # The command name, in parentheses, may hold spaces and ")": count from the last one.
    fields = (text or '').rpartition(')')[2].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def remembered(holder, proc='/proc'):
    """What the helper keeps of a process it evicts, or that took a port back: itself and its parent, each as (pid, start)."""
    ppid = holder.get('ppid')
    return {'pid': holder['pid'], 'start': process_start(holder['pid'], proc),
            'ppid': ppid, 'parent_start': process_start(ppid, proc) if ppid else None}


def parent_fields(holder, proc='/proc'):
    """The receipt fields naming who started ``holder``: the supervisor or loop that respawns it."""
    ppid = holder.get('ppid')
    if not ppid:
        return {}
    parent = describe_process(ppid, cgroup_root(proc), proc)
    return {'parent': ppid, 'parent_cmdline': ' '.join(parent['cmdline'] or [parent['name'] or '?'])}


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _processes(record, key):
    """The well-formed process records under ``key`` of one port's record."""
    found = record.get(key) if isinstance(record, dict) else None
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


def respawn_reason(record, process):
    """Why ``process`` (as ``remembered``) looks like a respawn of what was evicted in ``record``, or None.

    Either it is the very process that took the port back after that
    eviction, or its parent is the parent of a process evicted or found
    there then. PID 1 adopts orphans and parents every system service, so
    being its child says nothing.
    """
    for item in _processes(record, 'newcomers'):
        if process.get('start') is not None and (item.get('pid'), item.get('start')) == (process['pid'], process['start']):
            evicted = ', '.join(str(evicted.get('pid')) for evicted in _processes(record, 'evicted'))
            return 'took the port back after pid %s was evicted' % (evicted or '?')
    parent = (process.get('ppid'), process.get('parent_start'))
    if parent[0] in (None, 0, 1) or parent[1] is None:
        return None
    for key in ('evicted', 'newcomers'):
        for item in _processes(record, key):
            if (item.get('ppid'), item.get('parent_start')) == parent:
                return 'respawned by pid %s, which also started pid %s%s' % (
                    parent[0], item.get('pid'), ', evicted from this port' if key == 'evicted' else
                    ', which took the port back after an eviction')
    return None


def record_age(record, now):
    """Seconds since the eviction ``record`` remembers, or None when it has no usable time."""
    at = record.get('at') if isinstance(record, dict) else None
    if not _number(at) or at > now:
        return None
    return now - at


def remember(state, labels, now, evicted, newcomers):
    """``state`` with one eviction recorded for each port in ``labels``; records older than STATE_KEEP_SEC dropped."""
    kept = dict((label, record) for label, record in state.items()
                if record_age(record, now) is not None and record_age(record, now) < STATE_KEEP_SEC)
    for label in labels:
        kept[label] = {'at': now, 'wall': int(time.time()), 'evicted': evicted, 'newcomers': newcomers}
    return kept


def _private_directory(directory):
    info = os.lstat(directory)
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o022


def load_state(path):
    """The helper's memory of its evictions, ``{port label: record}``; {} when there is none or it cannot be trusted."""
    try:
        if not _private_directory(os.path.dirname(path)):
            return {}
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, 'rb') as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
                return {}
            state = json.loads(handle.read(STATE_MAX_BYTES + 1).decode('utf-8'))
    except (OSError, ValueError, RecursionError):
        return {}
    return state if isinstance(state, dict) else {}


def save_state(path, state):
    """Write the memory atomically, readable by its owner only; False when that cannot be done (not root).

    It is only a memory: a helper that cannot keep it still frees the port.
    """
    directory = os.path.dirname(path)
    temp = os.path.join(directory, '.%s.%d' % (os.path.basename(path), os.getpid()))
    try:
        try:
            os.mkdir(directory, 0o700)
        except OSError:
            pass  # it exists, or cannot be made: the check below says which
        if not _private_directory(directory):
            return False
        text = json.dumps(state, sort_keys=True)
        if len(text) > STATE_MAX_BYTES:
            return False
        try:
            os.unlink(temp)
        except OSError:
            pass
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        return False
    return True


USAGE = """usage: collision-guard-evict [--grace-sec S] [--timeout-sec S] [--registry PATH] [--starting UNIT] [--dry-run]
                            [--pid-file PATH]... SERVICE [ADDRESS:]PORT/PROTOCOL...

Frees the registered ports of a systemd service before it starts: port-cleanup.conf runs it in
ExecStartPre, of the service and of the socket units that trigger it. Installed by qwf.collision_guard.

  SERVICE           the registered service, for example sms-webhook.service
  PORT/PROTOCOL     its registered ports, as 8765/tcp, 5514/udp or 127.0.0.2:53/udp
  --starting UNIT   the unit about to start, when it is not SERVICE (its socket unit)
  --grace-sec S     seconds between SIGTERM and SIGKILL (default 2)
  --timeout-sec S   the most this helper ever takes (default 10)
  --registry PATH   the registry file (default /etc/collision-guard/registry.json)
  --pid-file PATH   a PID or lock file of SERVICE, removed first when the pid in it is dead
                    or runs outside SERVICE (never followed when it is a link); repeatable
  --dry-run         say what would be done, and do nothing

Exit codes: 0 the ports are free, 1 refused (nothing was killed), 2 bad arguments,
3 still held at the deadline, 4 retaken: a process took a port back right after
its eviction, or a respawn of one evicted less than a minute ago holds it (it is
named, and not killed again).

Run by hand on a running service, it counts the service's own processes as the owner.
"""
_VALUE_OPTIONS = {'--grace-sec': 'grace_sec', '--timeout-sec': 'timeout_sec', '--registry': 'registry',
                  '--starting': 'starting', '--pid-file': 'pid_files'}


def parse_arguments(argv):
    """The command line as a dict; CollisionGuardError says what is wrong.

    Hand-written because argparse alone adds about 15 ms to every start.
    """
    options = {'grace_sec': DEFAULT_GRACE_SEC, 'timeout_sec': DEFAULT_TIMEOUT_SEC, 'registry': REGISTRY_PATH,
               'starting': None, 'dry_run': False, 'help': False, 'pid_files': []}
    positional = []
    remaining = list(argv)
    while remaining:
        arg = remaining.pop(0)
        name, has_value, value = arg.partition('=') if arg.startswith('--') else (arg, '', '')
        if arg in ('-h', '--help'):
            options['help'] = True
        elif arg == '--dry-run':
            options['dry_run'] = True
        elif name in _VALUE_OPTIONS:
            if not has_value:
                if not remaining:
                    raise CollisionGuardError('%s needs a value' % name)
                value = remaining.pop(0)
            key = _VALUE_OPTIONS[name]
            if key in ('grace_sec', 'timeout_sec'):
                try:
                    value = float(value)
                except ValueError:
                    raise CollisionGuardError('%s: %r is not a number' % (name, value))
            if key == 'pid_files':
                options[key].append(value)
            else:
                options[key] = value
        elif arg.startswith('-'):
            raise CollisionGuardError('unknown option %r' % arg)
        else:
            positional.append(arg)
    if len(positional) < 2 and not options['help']:
        raise CollisionGuardError('name the unit and at least one PORT/PROTOCOL')
    options['unit'], options['ports'] = (positional[0], positional[1:]) if positional else (None, [])
    return options


def run(options, journal, proc='/proc'):
    """Carry out one eviction; returns the exit code."""
    deadline = time.monotonic() + options['timeout_sec']
    service = options['unit']
    starting = options['starting'] or service
    problems = []
    for what, name, types in (('unit', service, ('service',)), ('--starting', options['starting'], ('service', 'socket'))):
        problem = unit_name_problem(name, types=types) if name is not None else None
        if problem:
            problems.append('%s %r %s' % (what, name, problem))
    if not 0 < options['grace_sec'] < options['timeout_sec'] <= 300:
        problems.append('need 0 < --grace-sec < --timeout-sec <= 300')
    problems.extend('--pid-file %r %s' % (path, pid_file_problem(path)) for path in options['pid_files'] if pid_file_problem(path))
    if problems:
        journal.log(ERROR, 'bad arguments: %s' % '; '.join(problems))
        return EXIT_USAGE
    try:
        targets = [parse_target(text) for text in options['ports']]
    except CollisionGuardError as error:
        journal.log(ERROR, 'bad port %s' % error)
        return EXIT_USAGE

    if options['pid_files']:
        clear_stale_pid_files(options['pid_files'], service, journal, options['dry_run'], proc)

    # Sockets on other addresses of the port (systemd-resolved on 127.0.0.53:53
    # beside a registered 127.0.0.2:53) do not collide: the judgement would
    # say so too, as each entry it judges by carries its target's address.
    listeners = colliding(read_holders(targets, proc), targets)
    if not listeners:
        return EXIT_FREE  # the usual case: nothing to do, nothing to log
    try:
        document = load_registry_document(options['registry'])
    except Exception as error:  # pylint: disable=broad-except
        # Without the registry no holder can be told from a registered service.
        # A corrupt file can break the parser in more ways than the loader names.
        problems = [str(error)] + error.problems if isinstance(error, CollisionGuardError) else [
            'cannot read the registry %s: %s: %s' % (options['registry'], type(error).__name__, error)]
        journal.log(ERROR, '%s; pid %s holds a port of %s, and nothing is evicted' % (
            '; '.join(problems), ', '.join(sorted(set(str(h['pid']) for h in listeners))), service))
        return EXIT_REFUSED
    # Nobody registered what the registry no longer holds: nothing on those ports is evicted.
    stale = stale_targets(service, targets, document['registry'])
    if stale:
        labels = ', '.join('%s/%s' % (endpoint(address, port), protocol) for port, protocol, address in stale)
        journal.log(WARNING, 'the registry no longer gives %s %s; nothing is evicted there (run harden to update '
                             'its drop-in)' % (service, labels))
        targets = [target for target in targets if target not in stale]
        listeners = colliding(listeners, targets)
        if not listeners:
            return EXIT_FREE
    judge = judge_for(document['registry'], document['never_evict'], listeners, deadline, proc)
    if not judge.systemd_answered:
        journal.log(ERROR, 'systemd did not say in time who the holders of the ports of %s are (pid %s); '
                           'nothing is evicted' % (service, ', '.join(sorted(set(str(h['pid']) for h in listeners)))))
        return EXIT_REFUSED
    plan, entries = plan_start(listeners, service, starting, targets, judge)
    if plan['refuse']:
        for item in plan['refuse']:
            journal.log(ERROR, receipt('refused', item['port'], item['holder'], reason=item['reason']))
        holders = sorted(set(holder_unit(item['holder']) or 'pid %s' % item['holder']['pid'] for item in plan['refuse']))
        journal.log(ERROR, 'not starting %s: its port is held by %s, which this helper may not evict; '
                           'nothing was killed' % (starting, ', '.join(holders)))
        return EXIT_REFUSED
    if not plan['evict']:
        return EXIT_FREE
    # Pinned before anything is signalled: an evicted process's parent is only known while it lives.
    pinned = [(item, remembered(item['holder'], proc)) for item in plan['evict']]
    state = load_state(STATE_PATH)
    now = time.monotonic()
    respawns = []
    for item, process in pinned:
        record = state.get(item['port'])
        reason = None if item.get('leftover') else respawn_reason(record, process)
        if reason:
            respawns.append((item, reason, record_age(record, now)))
    recent = [age for dummy_item, dummy_reason, age in respawns if age is not None and age < RESPAWN_MEMORY_SEC]
    for item, reason, age in respawns:
        if recent:
            then = 'not evicted again within %d s of that eviction; stop what respawns it' % RESPAWN_MEMORY_SEC
        else:
            then = '%s it again' % ('would evict' if options['dry_run'] else 'evicting')
        journal.log(WARNING, receipt('retaken', item['port'], item['holder'], reason='%s %s ago; %s' % (
            reason, '%.1f s' % age if age is not None else 'a while', then), **parent_fields(item['holder'], proc)))
    if recent:
        # Killing a respawning loop at every retry of the start would only feed it.
        journal.log(ERROR, 'not starting %s: its port was retaken by a respawn of what this helper evicted from it '
                           '%.1f s ago; nothing was killed' % (starting, min(recent)))
        return EXIT_RETAKEN
    if options['dry_run']:
        for item in plan['evict']:
            journal.log(NOTICE, receipt('would-evict', item['port'], item['holder'],
                                        action=item['how'], reason=item['reason']))
        return EXIT_FREE
    left = carry_out(plan, starting, options['grace_sec'], deadline, journal, proc)
    # A respawned squatter can take the port right back; say so, never loop.
    newcomers = retaken(targets, plan, judge, entries, deadline, proc)
    save_state(STATE_PATH, remember(
        state, sorted(set(item['port'] for item in plan['evict'])), time.monotonic(),
        [process for dummy_item, process in pinned],
        [remembered(holder, proc) for holder, dummy_label in newcomers if holder['pid']]))
    for holder, label in newcomers:
        journal.log(WARNING, receipt('retaken', label, holder, reason='took the port right after the eviction; '
                                     'it is not evicted, nor is what respawns it', **parent_fields(holder, proc)))
    if left:
        journal.log(ERROR, 'the ports of %s are still held after eviction; not starting it' % starting)
        return EXIT_STILL_HELD
    if newcomers:
        journal.log(ERROR, 'the ports of %s were retaken right after the eviction; not starting it' % starting)
        return EXIT_RETAKEN
    return EXIT_FREE


def retaken(targets, plan, judge, entries, deadline, proc='/proc', settle_sec=SETTLE_SEC, poll_sec=0.02,
            clock=time.monotonic, sleep=time.sleep):
    """Holders that took a port back after the eviction, as (holder, entry label) pairs.

    The port is watched for ``settle_sec`` (never past ``deadline``): a
    supervisor or a shell loop respawns its squatter after the eviction's
    last read. The first newcomer with a process ends the watch. A socket
    whose process just exited can outlive it by a moment with no process
    holding it; that one is waited for, up to ``ORPHAN_SOCKET_SEC``, before
    it is blamed on a newcomer, and a closing connection never is.
    """
    evicted = set(item['holder']['pid'] for item in plan['evict'])
    kept = set(item['holder']['pid'] for item in plan['keep'])
    started = clock()
    settle_until = min(deadline, started + settle_sec)
    orphan_until = min(deadline, started + max(settle_sec, ORPHAN_SOCKET_SEC))
    while True:
        newcomers = []
        for holder in read_holders(targets, proc):
            if holder['pid'] in evicted | kept or holder['pid'] == 1:
                continue
            if holder['pid'] is None and holder.get('state', 'LISTEN') not in _HELD_STATES:
                continue
            judged = judge_holder(judge, entries, holder)
            if judged and judged[0] != OWNER:
                newcomers.append((holder, entry_label(judged[2])))
        with_process = [found for found in newcomers if found[0]['pid'] is not None]
        now = clock()
        if with_process:
            return with_process
        if now >= (orphan_until if newcomers else settle_until):
            return newcomers
        sleep(poll_sec)


def where_it_failed(error):
    """``file:line`` of the innermost frame of ``error``'s traceback, for a one-line report."""
    import traceback  # only on this rare path: it costs every start a few milliseconds
    frames = traceback.extract_tb(error.__traceback__)
    return '%s:%s' % (os.path.basename(frames[-1][0]), frames[-1][1]) if frames else '?'


def main(argv=None, proc='/proc'):
    journal = Journal(JOURNAL_IDENTIFIER)
    try:
        options = parse_arguments(sys.argv[1:] if argv is None else argv)
    except CollisionGuardError as error:
        journal.log(ERROR, 'bad arguments: %s' % error)
        sys.stderr.write(USAGE)
        return EXIT_USAGE
    if options['help']:
        sys.stdout.write(USAGE)
        return EXIT_FREE
    try:
        return run(options, journal, proc)
    except Exception as error:  # pylint: disable=broad-except
        # A guard that breaks must never be worse than no guard: the start goes on.
        journal.log(WARNING, 'failed unexpectedly (%s at %s); the start goes on without freeing the port' % (
            quote('%s: %s' % (type(error).__name__, error)), where_it_failed(error)))
        return EXIT_FREE
