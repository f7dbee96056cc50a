#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: bind_deny
short_description: Refuse bind() on the registered ports to the slices and units where agents run
version_added: 0.1.0
description:
  - Prevention, the first layer before eviction. Writes
    C(/etc/systemd/system/<unit>.d/collision-guard-deny.conf) for each unit in O(units), with one
    C(SocketBindDeny=) per registered port of this host (by protocol, and IPv6 only for an entry on a specific
    IPv6 address). systemd then refuses the bind of those ports to every process of the unit and the units under
    it, root included, with EPERM ("Operation not permitted"), so a squatter never gets the port and the
    registered service is never touched.
  - Needs systemd 249 or newer built with C(+BPF_FRAMEWORK), and a working cgroup BPF attach, which it tries on a
    scratch transient unit. Where that is missing (Debian 12's systemd 252 is built without it) it writes nothing,
    removes the deny drop-ins it wrote earlier, warns once and reports RV(prevention.state=unavailable) with the
    reason. Eviction still protects there.
  - A change to a running slice does not reach it with a C(daemon-reload) alone, and a reload may even detach its
    program. So after writing it applies the list to running units with
    C(systemctl set-property --runtime UNIT SocketBindDeny=...), and proves it on each slice with a probe, a
    transient unit in the slice whose C(bind()) on a loopback address must fail with EPERM. The probe never
    listens. On a rerun it probes again, and applies the list again only when the probe binds.
  - Refuses, with nothing changed, a listed slice that holds a registered unit (C(-.slice), C(system.slice) when
    registered units run there), since a deny on a parent is not lifted by C(SocketBindAllow=) on the child, and a
    listed unit that is registered itself.
  - Deny drop-ins of units no longer listed, and all of them with O(state=absent) or when no registered unit is on
    this host, are removed, and a probe says whether systemd still refuses their ports.
  - Runs C(systemctl daemon-reload) itself, only when a deny drop-in changed.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports the drop-ins it would write or remove and whether it would apply them; runs no probe.
  diff_mode:
    support: full
    description: Returns the before and after of every deny drop-in.
  platform:
    support: full
    platforms: posix
    description: Needs systemd, C(systemctl) and C(systemd-run) on the host.
options:
  registry:
    description:
      - The registry entries whose unit is on this host, under their canonical names, as
        M(qwf.collision_guard.guard_dropins) returns them in RV(qwf.collision_guard.guard_dropins#module:registry).
      - Each needs C(port), C(service), and optionally C(protocol) and C(address).
    type: list
    elements: dict
    required: true
  units:
    description:
      - The slices and service units whose processes must not bind the registered ports, such as C(user.slice),
        which holds every login session, SSH, tmux and C(systemd --user) services.
    type: list
    elements: str
    default: [user.slice]
  state:
    description:
      - V(present) keeps the deny drop-ins of O(units); V(absent) removes every deny drop-in this collection wrote.
    type: str
    choices: [present, absent]
    default: present
  unit_dir:
    description:
      - Directory holding the units' drop-in directories.
    type: path
    default: /etc/systemd/system
  python:
    description:
      - The Python that runs the probe inside its transient unit.
    type: path
    default: /usr/bin/python3
"""

EXAMPLES = r"""
- name: Refuse the registered ports to login sessions and the agents' service
  qwf.collision_guard.bind_deny:
    registry: "{{ harden_units.registry }}"
    units: [user.slice, agent-runner.service]
  register: prevention

- name: Say whether it holds
  ansible.builtin.debug:
    msg: "prevention: {{ prevention.prevention.summary }}"
"""

RETURN = r"""
prevention:
  description: Whether prevention holds on this host.
  returned: success
  type: dict
  contains:
    state:
      description: V(active) (every probe refused), V(degraded) (a probe was not refused), V(unavailable)
        (this systemd cannot refuse binds) or V(off) (nothing to deny, or O(state=absent)).
      type: str
      sample: active
    reason:
      description: Why it is not active, or null.
      type: str
      sample: systemd 252 without BPF_FRAMEWORK
    summary:
      description: The state with its reason, as harden prints it.
      type: str
      sample: unavailable (systemd 252 without BPF_FRAMEWORK)
    units:
      description: The listed units that carry the deny on this host.
      type: list
      elements: str
      sample: [user.slice]
    missing:
      description: Listed units that systemd does not know on this host; they get no drop-in.
      type: list
      elements: str
      sample: [agent-runner.service]
    rules:
      description: The C(SocketBindDeny=) rules.
      type: list
      elements: str
      sample: ["tcp:8765", "udp:8766", "ipv6:tcp:8443"]
    applied:
      description: The running units the list was applied to in this run with C(systemctl set-property --runtime).
      type: list
      elements: str
      sample: [user.slice]
    probes:
      description: The probes run, each with its unit, rule, outcome (V(denied), V(allowed), V(error)), errno,
        the seconds C(bind()) took to fail and a detail line.
      type: list
      elements: dict
      sample:
        - {unit: user.slice, rule: "tcp:8765", outcome: denied, errno: 1, sec: 0.00003,
           detail: "bind() refused with EPERM in 30 us"}
    systemd_version:
      description: The host's systemd version.
      type: int
      sample: 257
removed:
  description: The deny drop-ins removed (or that would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: [/etc/systemd/system/cron.service.d/collision-guard-deny.conf]
daemon_reload:
  description: Whether this run reloaded systemd (or would, in check mode), because a deny drop-in changed.
  returned: success
  type: bool
  sample: true
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import dropin_path, is_managed, unit_of_dropin
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import read_bytes
from ansible_collections.qwf.collision_guard.plugins.module_utils._module_files import sync_dropin
from ansible_collections.qwf.collision_guard.plugins.module_utils._prevention import (
    DENY_DROPIN_NAME,
    RUNTIME_CONTROL_DIR,
    RUNTIME_DENY_NAME,
    deny_rules,
    parse_version,
    prevent_in_problems,
    probe_bind,
    refusals,
    render_deny_dropin,
    rules_in,
    summary,
    support_problem,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import ask_systemd
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import parse_unit_properties, show_command


def read_text(path):
    return to_text(read_bytes(path) or b'', errors='surrogate_or_replace')


def managed_deny_dropins(unit_dir):
    """The deny drop-ins this collection wrote, by unit."""
    found = {}
    for path in glob.glob(os.path.join(glob.escape(unit_dir), '*.d', DENY_DROPIN_NAME)):
        if is_managed(read_text(path)):
            found[unit_of_dropin(path)] = path
    return found


def runtime_path(unit):
    return os.path.join(RUNTIME_CONTROL_DIR, unit + '.d', RUNTIME_DENY_NAME)


def show(module, units, properties):
    if not units:
        return {}
    return parse_unit_properties(ask_systemd(module, show_command(units, properties), 'about its units'), units)


def registered_units(module, registry):
    """Each registered unit here with its names and slice, as systemd shows them."""
    names = sorted(set(entry['service'] for entry in registry))
    view = show(module, names, ['Names', 'Slice'])
    return dict((name, {'names': (view.get(name, {}).get('Names') or name).split(), 'slice': view.get(name, {}).get('Slice')})
                for name in names)


def run(module, argv, what):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg='Cannot %s: %s exited %d: %s' % (what, ' '.join(argv[:3]), rc, err.strip()))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type='list', elements='dict', required=True),
            units=dict(type='list', elements='str', default=['user.slice']),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            python=dict(type='path', default='/usr/bin/python3'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    problems = prevent_in_problems(params['units'], where='units')
    if problems:
        module.fail_json(msg='%d bad unit(s) for the deny; nothing was changed: %s' % (len(problems), '; '.join(problems)),
                         problems=problems)
    systemctl = module.get_bin_path('systemctl', required=True)
    systemd_run = module.get_bin_path('systemd-run', required=True)
    version, features = parse_version(run(module, [systemctl, '--version'], 'learn the systemd version'))
    rules = deny_rules(params['registry']) if params['state'] == 'present' else []
    listed = list(dict.fromkeys(params['units'])) if rules else []

    if listed:
        refused = refusals(listed, registered_units(module, params['registry']))
        if refused:
            module.fail_json(msg='The deny cannot go on every listed unit; nothing was changed: %s' % ' '.join(refused),
                             problems=refused)

    reason = support_problem(version, features) if listed else None
    if listed and reason is None and not module.check_mode:
        scratch = probe_bind('scratch', rules[0], params['python'], systemd_run=systemd_run)
        if scratch['outcome'] != 'denied':
            reason = 'the cgroup BPF attach does not work here: a scratch unit with SocketBindDeny=%s was not refused (%s)' % (
                rules[0], scratch['detail'])
    view = show(module, listed, ['LoadState', 'ActiveState']) if listed and reason is None else {}
    wanted = [unit for unit in listed if view.get(unit, {}).get('LoadState') == 'loaded']
    missing = [unit for unit in listed if unit not in wanted and reason is None]

    found = managed_deny_dropins(params['unit_dir'])
    diffs, removed, changed_units = [], [], []
    for unit in wanted:
        path = dropin_path(unit, DENY_DROPIN_NAME, params['unit_dir'])
        changed, diff = sync_dropin(module, path, render_deny_dropin(unit, rules))
        if changed:
            changed_units.append(unit)
        if diff:
            diffs.append(diff)
    gone = {}
    for unit, path in sorted(found.items()):
        if unit in wanted:
            continue
        gone[unit] = rules_in(read_text(path))
        changed, diff = sync_dropin(module, path, None)
        if changed:
            removed.append(path)
        if diff:
            diffs.append(diff)

    # What set-property left in /run from an earlier run: a list other than
    # today's would be realized with the reload below, so it goes first.
    stale_runtime = [unit for unit in list(wanted) + list(gone)
                     if os.path.exists(runtime_path(unit)) and set(rules_in(read_text(runtime_path(unit)))) != set(
                         rules if unit in wanted else [])]
    daemon_reload = bool(diffs) or bool(stale_runtime)
    if daemon_reload and not module.check_mode:
        for unit in stale_runtime:
            os.remove(runtime_path(unit))
        run(module, [systemctl, 'daemon-reload'], 'reload systemd')

    applied, probes = [], []
    for unit in wanted:
        active = view.get(unit, {}).get('ActiveState') in ('active', 'activating', 'reloading')
        due = unit in changed_units or unit in stale_runtime
        if not due and not unit.endswith('.slice'):
            # No probe can run inside a service: its list is applied once, and set-property's file tells.
            due = not os.path.exists(runtime_path(unit))
        elif not due and not module.check_mode:
            # After a reboot the slice started with its drop-in and needs nothing; after a reload it may.
            probe = probe_bind(unit, rules[0], params['python'], systemd_run=systemd_run)
            due = probe['outcome'] != 'denied'
            if not due:
                probes.append(probe)
        if due and active:
            applied.append(unit)
            if not module.check_mode:
                run(module, [systemctl, 'set-property', '--runtime', '--', unit, 'SocketBindDeny=']
                    + ['SocketBindDeny=%s' % rule for rule in rules], 'apply the deny to %s' % unit)
        if due and unit.endswith('.slice') and not module.check_mode:
            probes.extend(probe_bind(unit, rule, params['python'], systemd_run=systemd_run) for rule in rules)

    # Measured on systemd 257: a running slice keeps the program of a list it
    # no longer has (systemd installs a new one for a new list, and detaches
    # none when the list empties), and nothing short of its restart detaches it.
    for unit in sorted(gone):
        if gone[unit] and show(module, [unit], ['ActiveState']).get(unit, {}).get('ActiveState') == 'active':
            module.warn('The deny drop-in of %s went, but the running %s may go on refusing %s until it is started '
                        'again (for user.slice, the next boot): systemd does not detach a running slice\'s old '
                        'socket-bind program.' % (unit, unit, ', '.join(gone[unit])))

    state = 'off'
    if listed and reason:
        state = 'unavailable'
        # Once per host: harden's plan runs this in check mode before the run that writes.
        if not module.check_mode:
            module.warn('prevention unavailable on this host (%s); eviction still protects the registered ports.' % reason)
    elif wanted:
        refused = [probe for probe in probes if probe['outcome'] != 'denied']
        state = 'degraded' if refused else 'active'
        if refused:
            reason = '; '.join('%s in %s: %s' % (probe['rule'], probe['unit'], probe['detail']) for probe in refused)
            module.warn('prevention degraded: %s' % reason)
        elif module.check_mode and (changed_units or applied):
            reason = 'not probed in check mode'
    elif listed:
        reason = 'no listed unit is on this host'
    module.exit_json(
        changed=bool(diffs) or bool(applied) or daemon_reload,
        daemon_reload=daemon_reload,
        removed=removed,
        prevention=dict(state=state, reason=reason, summary=summary(state, reason), units=wanted, missing=missing,
                        rules=rules, applied=applied, probes=probes, systemd_version=version),
        diff=diffs,
    )


if __name__ == '__main__':
    main()
