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
import sys
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import ERROR, NOTICE, WARNING, Journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import PROTOCOLS, REGISTRY_PATH, load_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import (
    fd_targets,
    read_listeners,
    socket_inode,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import run_systemctl, show_properties
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import LIST_SOCKETS_COMMAND, socket_units_by_port
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import service_unit_name_problem

DEFAULT_GRACE_SEC = 2.0
DEFAULT_TIMEOUT_SEC = 10.0

# Exit codes. Anything but 0 fails the unit's start, with the reason in its journal.
EXIT_FREE = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_STILL_HELD = 3

SIGNAL_NAMES = {signal.SIGTERM: 'SIGTERM', signal.SIGKILL: 'SIGKILL'}
JOURNAL_IDENTIFIER = 'collision-guard-evict'


def parse_target(text):
    """``8765/tcp`` (or ``8765``, meaning tcp) -> (8765, 'tcp'); CollisionGuardError when malformed."""
    port_text, dummy, protocol = text.partition('/')
    protocol = protocol or 'tcp'
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise CollisionGuardError('%r: the port is not an integer in 1-65535' % text)
    if protocol not in PROTOCOLS:
        raise CollisionGuardError('%r: the protocol is not one of %s' % (text, ', '.join(PROTOCOLS)))
    return int(port_text), protocol


def registered_ports(registry):
    """Map each registered unit to its ports as ``8765/tcp`` strings."""
    ports = {}
    for entry in registry:
        ports.setdefault(entry['service'], []).append('%d/%s' % (entry['port'], entry['protocol']))
    return ports


def _refusal(holder, reason):
    return {'holder': holder, 'reason': reason}


def _judge_process(holder, unit, registered, context):
    """One process holding a socket on the unit's port: ('signal'|'stop-unit', reason) or a refusal reason."""
    netns = holder.get('netns')
    if netns and context.get('host_netns') and netns != context['host_netns']:
        return None, 'it runs in another network namespace'
    owner_unit = holder.get('unit')
    if owner_unit == unit:
        return 'signal', 'left over from an earlier run of %s' % unit
    if owner_unit in registered:
        return None, '%s is registered for %s; a registered service is never killed' % (
            owner_unit, ', '.join(registered[owner_unit]))
    service = context.get('services', {}).get(owner_unit) or {}
    if service.get('MainPID') == str(holder['pid']) and service.get('Restart', 'no') != 'no':
        # Killing a supervised main process only makes systemd start it again.
        return 'stop-unit', '%s would restart it (Restart=%s)' % (owner_unit, service['Restart'])
    return 'signal', 'not registered for this port'


def plan_eviction(listeners, unit, registry, context):
    """Decide what to do with every process holding one of ``unit``'s ports.

    ``listeners`` are ``read_listeners`` entries, each with ``netns`` added.
    ``context`` holds ``host_netns``, ``socket_triggers`` (socket unit -> the
    units it activates, for sockets PID 1 holds) and ``services`` (unit ->
    its MainPID and Restart, for unregistered service units holding a port).

    Returns ``{'evict': [...], 'refuse': [...], 'keep': [...]}``. ``evict``
    holds one item per process (``holder``, ``how``, ``reason``). It is
    empty whenever ``refuse`` is not: a holder that may not be killed keeps
    the port busy whatever happens to the others, so no one is killed.
    """
    registered = registered_ports(registry)
    plan = {'evict': [], 'refuse': [], 'keep': []}
    by_socket = {}
    for holder in listeners:
        by_socket.setdefault(holder['inode'], []).append(holder)
    for inode in sorted(by_socket):
        holders = by_socket[inode]
        pids = [holder['pid'] for holder in holders]
        if None in pids:
            plan['refuse'].append(_refusal(holders[0], 'no process that this helper can see holds it '
                                                       '(a kernel socket, or the helper is not root)'))
            continue
        if 1 in pids:
            socket_units = context.get('socket_units', {}).get((holders[0]['protocol'], holders[0]['port']), [])
            ours = [name for name in socket_units if unit in context.get('socket_triggers', {}).get(name, [])]
            if ours:
                plan['keep'].append({'holder': holders[0], 'reason': 'held for %s by %s' % (unit, ours[0])})
            else:
                plan['refuse'].append(_refusal(
                    [holder for holder in holders if holder['pid'] == 1][0],
                    'PID 1 holds it for %s; systemd is never killed' % (', '.join(socket_units) or 'a socket unit')))
            continue
        for holder in holders:
            how, reason = _judge_process(holder, unit, registered, context)
            if how is None:
                plan['refuse'].append(_refusal(holder, reason))
            elif holder['pid'] not in [item['holder']['pid'] for item in plan['evict']]:
                plan['evict'].append({'holder': holder, 'how': how, 'reason': reason})
    if plan['refuse']:
        plan['evict'] = []
    return plan


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
             'user=%s' % (holder.get('user') or '?'), 'unit=%s' % (holder.get('unit') or '-')]
    for key in sorted(fields):
        value = fields[key]
        parts.append('%s=%s' % (key, quote(value) if ' ' in str(value) or not str(value) else value))
    parts.append('cmdline=%s' % quote(' '.join(holder.get('cmdline') or [holder.get('name') or '?'])))
    return ' '.join(parts)


def netns_of(pid, proc='/proc'):
    try:
        return os.readlink(os.path.join(proc, str(pid), 'ns', 'net'))
    except OSError:
        return None


def read_holders(targets, proc='/proc'):
    """Every process (or none, for a kernel socket) holding a listening socket on one of ``targets``."""
    # One read for all targets, of only their protocols' tables.
    protocols = set(protocol for dummy_port, protocol in targets)
    found, dummy_complete = read_listeners(protocol=protocols.pop() if len(protocols) == 1 else None,
                                           targets=set(targets), proc=proc)
    # In the order of ``targets``, which the receipts follow.
    listeners = sorted(found, key=lambda holder: targets.index((holder['port'], holder['protocol'])))
    for holder in listeners:
        holder['netns'] = netns_of(holder['pid'], proc) if holder['pid'] else None
    return listeners


def systemd_context(listeners, registry, deadline, proc='/proc'):
    """The facts ``plan_eviction`` needs from systemd, asked only about the holders found."""
    context = {'host_netns': netns_of(1, proc), 'socket_units': {}, 'socket_triggers': {}, 'services': {}}
    if any(holder['pid'] == 1 for holder in listeners):
        context['socket_units'] = socket_units_by_port(run_systemctl(LIST_SOCKETS_COMMAND, deadline) or '')
        names = sorted(set(name for names in context['socket_units'].values() for name in names))
        context['socket_triggers'] = dict((name, props.get('Triggers', '').split())
                                          for name, props in show_properties(names, ('Triggers',), deadline).items())
    registered = set(entry['service'] for entry in registry)
    services = sorted(set(holder['unit'] for holder in listeners
                          if (holder['unit'] or '').endswith('.service') and holder['unit'] not in registered))
    context['services'] = show_properties(services, ('MainPID', 'Restart'), deadline)
    return context


def holds_socket(pid, inodes, proc='/proc'):
    """Whether the process still has one of ``inodes`` open (False once it exited or is a zombie)."""
    try:
        targets = fd_targets(os.path.join(proc, str(pid)))
    except OSError:
        return True
    return any(socket_inode(target) in inodes for dummy, target in targets)


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
        label = _label(target.holder)
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
        journal.log(priority, receipt('evicted' if target not in pending else 'failed', _label(target.holder),
                                      target.holder, signal='+'.join(target.signals), outcome=target.outcome))
        target.close()
    return pending


def _label(holder):
    return '%d/%s' % (holder['port'], holder['protocol'])


USAGE = """usage: collision-guard-evict [--grace-sec S] [--timeout-sec S] [--registry PATH] [--dry-run] UNIT PORT/PROTOCOL...

Frees the registered ports of a systemd unit before it starts: port-cleanup.conf runs it in
ExecStartPre. Installed by qwf.collision_guard.

  UNIT              the unit about to start, for example sms-webhook.service
  PORT/PROTOCOL     its registered ports, as 8765/tcp or 5514/udp
  --grace-sec S     seconds between SIGTERM and SIGKILL (default 2)
  --timeout-sec S   the most this helper ever takes (default 10)
  --registry PATH   the registry file (default /etc/collision-guard/registry.json)
  --dry-run         say what would be done, and do nothing
"""
_VALUE_OPTIONS = {'--grace-sec': 'grace_sec', '--timeout-sec': 'timeout_sec', '--registry': 'registry'}


def parse_arguments(argv):
    """The command line as a dict; CollisionGuardError says what is wrong.

    Hand-written because argparse alone adds about 15 ms to every start.
    """
    options = {'grace_sec': DEFAULT_GRACE_SEC, 'timeout_sec': DEFAULT_TIMEOUT_SEC, 'registry': REGISTRY_PATH,
               'dry_run': False, 'help': False}
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
            if key != 'registry':
                try:
                    value = float(value)
                except ValueError:
                    raise CollisionGuardError('%s: %r is not a number' % (name, value))
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
    problem = service_unit_name_problem(options['unit'])
    if problem or not 0 < options['grace_sec'] < options['timeout_sec'] <= 300:
        journal.log(ERROR, 'bad arguments: %s' % (
            'unit %r %s' % (options['unit'], problem) if problem else 'need 0 < --grace-sec < --timeout-sec <= 300'))
        return EXIT_USAGE
    try:
        targets = [parse_target(text) for text in options['ports']]
    except CollisionGuardError as error:
        journal.log(ERROR, 'bad port %s' % error)
        return EXIT_USAGE
    unit = options['unit']

    listeners = read_holders(targets, proc)
    if not listeners:
        return EXIT_FREE  # the usual case: nothing to do, nothing to log
    try:
        registry = load_registry(options['registry'])
    except CollisionGuardError as error:
        # Without the registry no holder can be told from a registered service.
        journal.log(ERROR, '%s; pid %s holds a port of %s, and nothing is evicted' % (
            error.full_message(), ', '.join(sorted(set(str(h['pid']) for h in listeners))), unit))
        return EXIT_REFUSED
    context = systemd_context(listeners, registry, deadline, proc)
    plan = plan_eviction(listeners, unit, registry, context)
    if plan['refuse']:
        for item in plan['refuse']:
            journal.log(ERROR, receipt('refused', _label(item['holder']), item['holder'], reason=item['reason']))
        holders = sorted(set(item['holder'].get('unit') or 'pid %s' % item['holder']['pid'] for item in plan['refuse']))
        journal.log(ERROR, 'not starting %s: its port is held by %s, which this helper may not evict; '
                           'nothing was killed' % (unit, ', '.join(holders)))
        return EXIT_REFUSED
    if not plan['evict']:
        return EXIT_FREE
    if options['dry_run']:
        for item in plan['evict']:
            journal.log(NOTICE, receipt('would-evict', _label(item['holder']), item['holder'],
                                        action=item['how'], reason=item['reason']))
        return EXIT_FREE
    left = carry_out(plan, unit, options['grace_sec'], deadline, journal, proc)
    # A respawned squatter can take the port right back; say so, never loop.
    after = read_holders(targets, proc)
    evicted = set(item['holder']['pid'] for item in plan['evict'])
    newcomers = [holder for holder in after if holder['pid'] not in evicted and holder['pid'] != 1]
    if left or newcomers:
        for holder in newcomers:
            journal.log(WARNING, receipt('retaken', _label(holder), holder,
                                         reason='took the port right after the eviction; a supervisor respawns it'))
        journal.log(ERROR, 'the ports of %s are still held after eviction; not starting it' % unit)
        return EXIT_STILL_HELD
    return EXIT_FREE


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
    return run(options, journal, proc)
