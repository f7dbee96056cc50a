# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Prevention: systemd's ``SocketBindDeny=`` on the slices and units where agents run.

systemd attaches a cgroup BPF program that refuses ``bind()`` on the listed
ports to every process of the unit and the units under it, root included, so
a squatter's bind fails at once with EPERM and the registered service is
never touched. It needs systemd 249 or newer, built with ``+BPF_FRAMEWORK``.

A deny on a slice also binds the units below it, and ``SocketBindAllow=`` on
a child does not lift it: a listed slice must never be an ancestor of a
registered unit.

What holds is only ever known by trying: a transient unit in the slice binds
a denied port and must get EPERM (``probe_bind``). A ``daemon-reload`` can
leave a running slice without its program until its cgroup is realized again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import normalise_address
from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import managed_header
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import unit_name_problem

DENY_DROPIN_NAME = 'collision-guard-deny.conf'
SOCKET_BIND_SINCE = 249
PREVENT_TYPES = ('slice', 'service')
ROOT_SLICE = '-.slice'
# Where `systemctl set-property --runtime` keeps what it sets.
RUNTIME_CONTROL_DIR = '/run/systemd/system.control'
RUNTIME_DENY_NAME = '50-SocketBindDeny.conf'
PROBE_TIMEOUT_SEC = 15
PROBE_DESCRIPTION = 'qwf.collision_guard prevention probe'
# The probe's exit codes: its bind was refused with EPERM, or it was not.
PROBE_DENIED = 10
PROBE_ALLOWED = 11
# The probe binds a loopback address and never listens: even where nothing
# stops it, it serves nothing and takes the port from no one. The cgroup's
# program runs before the kernel looks at the address or the port's users,
# so a refused bind is EPERM whatever the address.
PROBE_CODE = r'''
import errno, json, socket, sys, time
family, kind, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sock = socket.socket(socket.AF_INET6 if family == "ipv6" else socket.AF_INET,
                     socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
start = time.perf_counter()
try:
    sock.bind(("::1" if family == "ipv6" else "127.0.0.1", port))
    number = 0
except OSError as error:
    number = error.errno
took = time.perf_counter() - start
sock.close()
print(json.dumps({"errno": number, "sec": took}))
sys.exit(10 if number == errno.EPERM else 11)
'''
# The probe's unit: no user of its own, nothing to write, no way to more
# privilege than binding a low port, gone when it ends.
PROBE_PROPERTIES = (
    'DynamicUser=yes',
    'AmbientCapabilities=CAP_NET_BIND_SERVICE',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6',
    'RuntimeMaxSec=%d' % PROBE_TIMEOUT_SEC,
)


def rule_of(entry):
    """The ``SocketBindDeny=`` rule for one registry entry: ``tcp:8765``, ``ipv6:udp:53``.

    Only an entry on a specific IPv6 address narrows the rule to IPv6. One on
    an IPv4 address is denied on both families, since a squatter on ``::``
    without IPV6_V6ONLY takes every IPv4 address too.
    """
    address = entry.get('address')
    family = ''
    if address:
        normal, problem = normalise_address(address)
        if problem is None and ':' in normal and normal != '::' and not normal.startswith('::ffff:'):
            family = 'ipv6:'
    return '%s%s:%d' % (family, entry.get('protocol') or 'tcp', int(entry['port']))


def parse_rule(rule):
    """``(family, protocol, port)`` of a rule of ``rule_of``; family is ``ipv4`` unless the rule says ``ipv6``."""
    parts = rule.split(':')
    family = parts.pop(0) if len(parts) == 3 else 'ipv4'
    return family, parts[0], int(parts[1])


def deny_rules(entries):
    """The rules for the registry entries present on a host, one per (family, protocol, port), in port order.

    A rule for both families makes the IPv6-only rule of the same port redundant.
    """
    rules = set(rule_of(entry) for entry in entries)
    rules = set(rule for rule in rules if not (rule.startswith('ipv6:') and rule[5:] in rules))
    return sorted(rules, key=lambda rule: (parse_rule(rule)[2], parse_rule(rule)[1], rule))


def render_deny_dropin(unit, rules):
    """The text of ``collision-guard-deny.conf`` for ``unit``, or None when no rule is left."""
    if not rules:
        return None
    section = '[Slice]' if unit.endswith('.slice') else '[Service]'
    header = managed_header('Refuses bind() on the registered ports to every process in %s (SocketBindDeny=).' % unit)
    return header + section + '\n' + ''.join('SocketBindDeny=%s\n' % rule for rule in rules)


def rules_in(text):
    """The ``SocketBindDeny=`` values of a unit file or drop-in, in order; an empty one resets the list."""
    rules = []
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('SocketBindDeny='):
            value = line[len('SocketBindDeny='):].strip()
            rules = rules + [value] if value else []
    return rules


def parse_version(output):
    """``(version, features)`` from ``systemctl --version``: ``(257, ['+PAM', ..., '+BPF_FRAMEWORK'])``."""
    lines = (output or '').strip().splitlines()
    words = lines[0].split() if lines else []
    version = int(words[1]) if len(words) > 1 and words[0] == 'systemd' and words[1].isdigit() else 0
    features = lines[1].split() if len(lines) > 1 else []
    return version, features


def support_problem(version, features):
    """Why this systemd cannot refuse binds, or None when it should (a probe still decides)."""
    if not version:
        return 'the systemd version is unknown'
    if version < SOCKET_BIND_SINCE:
        return 'systemd %d is older than %d, which brought SocketBindDeny=' % (version, SOCKET_BIND_SINCE)
    if '+BPF_FRAMEWORK' not in features:
        return 'systemd %d without BPF_FRAMEWORK' % version
    return None


def slice_ancestors(slice_name):
    """``system-postgresql.slice`` -> ``[system-postgresql.slice, system.slice, -.slice]``: the slice and those above it."""
    if not slice_name or slice_name == ROOT_SLICE:
        return [ROOT_SLICE]
    parts = slice_name[:-len('.slice')].split('-')
    return ['-'.join(parts[:count]) + '.slice' for count in range(len(parts), 0, -1)] + [ROOT_SLICE]


def prevent_in_problems(units, where='collision_guard_prevent_in'):
    """Why each name in ``units`` cannot carry the deny, as ``where[i]=...: why`` lines; [] when all can."""
    if not isinstance(units, list):
        return ['%s=%s: must be a list of slice or service unit names' % (where, json.dumps(units, default=str))]
    problems = []
    for index, unit in enumerate(units):
        shown = '%s[%d]=%s' % (where, index, json.dumps(unit, default=str))
        if not isinstance(unit, str):
            problems.append('%s: must be a unit name (a string)' % shown)
        elif unit == ROOT_SLICE:
            problems.append('%s: is the root slice, above every unit; a deny there would stop the registered '
                            'services from binding their own ports' % shown)
        else:
            problem = unit_name_problem(unit, types=PREVENT_TYPES)
            if problem:
                problems.append('%s: %s' % (shown, problem))
    return problems


def refusals(units, registered):
    """Why listed units must not carry the deny on this host: the messages, naming the registered unit.

    ``registered`` maps each registered unit present here to ``{'names': [...], 'slice': 'system.slice'}``,
    as systemd shows them (``Names``, ``Slice``). A listed slice above a
    registered unit would refuse that unit its own port; a listed unit that
    is registered would be denied its own port.
    """
    found = []
    for unit in units:
        for name in sorted(registered):
            info = registered[name]
            if unit in info.get('names', [name]) or unit == name:
                found.append('%s is a registered unit itself; a deny on it would refuse it its own ports. '
                             'Remove it from collision_guard_prevent_in.' % unit)
            elif unit.endswith('.slice') and unit in slice_ancestors(info.get('slice')):
                found.append('%s holds the registered unit %s (it runs in %s); a deny there would refuse %s its '
                             'own ports, and SocketBindAllow= on the unit cannot lift it. List the slices and '
                             'units where agents run instead, such as user.slice.'
                             % (unit, name, info.get('slice') or ROOT_SLICE, name))
    return found


def probe_argv(unit, rule, python='/usr/bin/python3', systemd_run='systemd-run'):
    """The command that tries ``rule``'s bind from a transient unit: in ``unit`` when it is a slice, else with the rule as its own deny."""
    family, protocol, port = parse_rule(rule)
    argv = [systemd_run, '--wait', '--collect', '--quiet', '--pipe', '--service-type=exec',
            '--description=%s' % PROBE_DESCRIPTION]
    if unit.endswith('.slice'):
        argv.append('--slice=%s' % unit)
    else:
        argv.extend(['--property=SocketBindDeny=%s' % rule])
    for setting in PROBE_PROPERTIES:
        argv.append('--property=%s' % setting)
    return argv + ['--', python, '-I', '-c', PROBE_CODE, family, protocol, str(port)]


def probe_outcome(unit, rule, returncode, stdout, took):
    """What a probe run means: ``denied`` (EPERM), ``allowed`` (bound, or failed for another reason) or ``error``."""
    result = {'unit': unit, 'rule': rule, 'outcome': 'error', 'errno': None, 'sec': None, 'detail': ''}
    try:
        report = json.loads((stdout or '').strip().splitlines()[-1])
        number, sec = int(report['errno']), float(report['sec'])
    except (ValueError, KeyError, IndexError, TypeError):
        result['detail'] = 'the probe did not run (systemd-run exited %s after %.2f s)' % (returncode, took)
        return result
    result.update(errno=number, sec=sec)
    if number == 1:
        result.update(outcome='denied', detail='bind() refused with EPERM in %.0f us' % (sec * 1e6))
    elif number == 0:
        result.update(outcome='allowed', detail='bind() succeeded')
    else:
        result.update(outcome='allowed', detail='bind() was not refused by the deny (errno %d)' % number)
    return result


def probe_bind(unit, rule, python='/usr/bin/python3', timeout=PROBE_TIMEOUT_SEC, systemd_run='systemd-run'):
    """Try ``rule``'s bind from a transient unit in ``unit`` (a slice) and say what happened (``probe_outcome``)."""
    # Imported here: the checker imports this file on every run, and most runs probe nothing.
    import subprocess
    argv = probe_argv(unit, rule, python, systemd_run)
    start = time.monotonic()
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return dict(probe_outcome(unit, rule, None, '', time.monotonic() - start),
                    detail='the probe did not run: %s' % error)
    outcome = probe_outcome(unit, rule, result.returncode, result.stdout, time.monotonic() - start)
    if outcome['outcome'] == 'error' and result.stderr.strip():
        outcome['detail'] += ': %s' % result.stderr.strip().splitlines()[-1][:200]
    return outcome


def summary(state, reason=None):
    """The line harden and check print per host: ``active``, ``off`` or ``unavailable (reason)``."""
    return '%s (%s)' % (state, reason) if reason else state
