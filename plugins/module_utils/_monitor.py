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
alert command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys
import time

from ansible_collections.qwf.collision_guard.plugins.module_utils import _journal
from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import endpoint
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._host_files import write_atomically
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import CRITICAL, OK, WARNING, gather_findings
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import REGISTRY_PATH, load_registry
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import run_systemctl, show_properties

METRICS_FILE = 'collision_guard.prom'
DEFAULT_TEXTFILE_DIR = '/var/lib/prometheus/node-exporter'
CONFIG_PATH = '/etc/collision-guard/monitor.json'
ALERT_TIMEOUT_SEC = 30
SYSTEMCTL_TIMEOUT_SEC = 20
JOURNAL_IDENTIFIER = 'collision-guard-check'


def escape_label(value):
    """A label value in the Prometheus text format: backslash, double quote and newline escaped."""
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


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


def render_metrics(findings, checked_at):
    """The textfile for node_exporter: one series per registered port, and the holder of each conflict."""
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
            lines.append('collision_guard_port_holder_info%s 1' % _labels(_key(finding) + [
                ('pid', holder['pid'] if holder['pid'] is not None else ''), ('holder_unit', holder['unit'] or ''),
                ('name', holder['name'] or ''), ('user', holder['user'] or ''),
                ('cmdline', ' '.join(holder['cmdline'] or [])[:200])]))
    lines += [
        '# HELP collision_guard_last_check_timestamp_seconds When the ownership check last ran.',
        '# TYPE collision_guard_last_check_timestamp_seconds gauge',
        'collision_guard_last_check_timestamp_seconds %.3f' % checked_at,
    ]
    return '\n'.join(lines) + '\n'


def _holder_text(holder):
    cmdline = json.dumps(' '.join(holder['cmdline'] or []))
    return 'pid=%s user=%s unit=%s cmdline=%s' % (holder['pid'], holder['user'], holder['unit'] or '-', cmdline)


def conflict_lines(findings):
    """One journal line per critical finding, the holders' command lines quoted."""
    return ['conflict port=%s/%s service=%s: %s; %s' % (
        endpoint(finding.get('address'), finding['port']), finding['protocol'], finding['service'], finding['message'],
        '; '.join(_holder_text(holder) for holder in finding['holders']))
        for finding in findings if finding['severity'] == CRITICAL]


def load_config(path):
    """The monitor's settings the role writes: ``{"alert_command": [argv...]}``; empty when absent."""
    try:
        with open(path) as handle:
            config = json.load(handle)
    except (IOError, OSError):
        return {}
    except ValueError as error:
        raise CollisionGuardError('cannot read %s: %s' % (path, error))
    if not isinstance(config, dict):
        raise CollisionGuardError('%s: not a JSON object' % path)
    command = config.get('alert_command') or []
    if not isinstance(command, list) or not all(isinstance(arg, str) for arg in command):
        raise CollisionGuardError('%s: alert_command must be a list of strings' % path)
    return {'alert_command': command}


def run_alert(command, findings, log):
    """Run the alert command without a shell; the conflicts go in as JSON in $COLLISION_GUARD_CONFLICTS."""
    import subprocess
    conflicts = [finding for finding in findings if finding['severity'] == CRITICAL]
    environment = dict(os.environ, COLLISION_GUARD_CONFLICTS=json.dumps(conflicts, sort_keys=True))
    try:
        result = subprocess.run(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, timeout=ALERT_TIMEOUT_SEC, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        log(_journal.ERROR, 'alert command %s failed: %s' % (json.dumps(command), error))
        return
    log(_journal.NOTICE if result.returncode == 0 else _journal.ERROR,
        'alert command %s exited %d' % (json.dumps(command), result.returncode))


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
    # A temp file renamed into place: node_exporter never reads half a file.
    write_atomically(os.path.join(textfile_dir, METRICS_FILE), render_metrics(findings, time.time()).encode('utf-8'))
    for line in conflict_lines(findings):
        journal.log(_journal.WARNING, line)
    if config.get('alert_command') and any(finding['severity'] == CRITICAL for finding in findings):
        run_alert(config['alert_command'], findings, journal.log)
    if not answered:
        # Entries whose unit systemd did not name have no finding, and so no series: say so, and fail.
        journal.log(_journal.ERROR, 'systemd did not answer in time; these registered ports were not checked: %s' % (
            ', '.join(unchecked_entries(registry, findings)) or 'none'))
        return 1
    return 0


def unchecked_entries(registry, findings):
    """The entries of the host's registry that got no finding, as ``service port/protocol`` labels."""
    checked = set((finding['service'], finding['port'], finding['protocol']) for finding in findings)
    return ['%s %s/%s' % (entry['service'], endpoint(entry.get('address'), entry['port']), entry['protocol'])
            for entry in registry if (entry['service'], entry['port'], entry['protocol']) not in checked]
