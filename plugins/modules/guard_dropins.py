#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: guard_dropins
short_description: Write the port-cleanup and restart-policy drop-ins of the registered services on a host
version_added: 0.1.0
description:
  - For each service in O(registry) that exists on the host, writes
    C(/etc/systemd/system/<unit>.d/port-cleanup.conf). Its C(ExecStartPre) frees the
    service's registered ports before every start, so a process squatting on a port
    cannot make the start fail.
  - Each entry's unit is resolved as systemd knows it first. An alias (C(sshd)) becomes the unit it names
    (C(ssh.service)), and a glob (C(postgresql@*-main)) the one loaded unit it fits on this host. A glob that
    fits several units, or two units claiming colliding addresses, fails the host with nothing changed.
  - Looks before arming. The module fails with nothing changed, naming the holder, when a registered port is held
    now by a service or socket unit that is neither the registered unit nor part of it. It also fails when the
    registered unit is a oneshot wrapper whose member units do the work, such as Debian's C(postgresql.service),
    and names the member to register instead. An entry's C(evict_holders) accepts a named holder.
  - A socket unit that triggers a registered service and listens on its port gets a C(port-cleanup.conf) too,
    in its own drop-in directory, since its start binds the port. Once it no longer listens on a registered port
    of that service, the one this collection wrote is removed.
  - Also writes C(restart-policy.conf) next to it, so a unit whose starts keep failing
    retries with a delay instead of giving up for good; see O(restart_policy).
  - A drop-in that is no longer wanted (O(cleanup_method=none), or O(restart_policy.enabled=false))
    is removed when this collection wrote it, and left alone with a warning otherwise.
  - Entries whose unit does not exist on the host are returned in RV(absent); that is not an error.
  - Writes a file only when its content differs, atomically, with mode C(0644).
  - Does not run C(systemctl daemon-reload); run it when RV(daemon_reload) is true.
  - Validates O(registry) itself, but use M(qwf.collision_guard.validate_registry) on the controller first,
    so a bad registry stops the play before any host is touched.
author:
  - Collision Guard maintainers (@qwf)
extends_documentation_fragment:
  - qwf.collision_guard.registry
attributes:
  check_mode:
    support: full
    description: Reports exactly the files it would write, and writes none.
  diff_mode:
    support: full
    description: Returns the before and after of every drop-in it writes.
  platform:
    support: full
    platforms: posix
    description: Needs systemd and C(systemctl) on the host.
options:
  cleanup_method:
    description:
      - How the drop-in frees a port.
      - V(evict) runs the eviction helper that the P(qwf.collision_guard.harden#role) role installs,
        as root (the C(+) prefix). It sends SIGTERM, then SIGKILL after O(eviction.grace_sec), only to
        processes that hold the port (listening, or bound or connected there without SO_REUSEADDR),
        and writes a receipt to the unit's journal. It never kills PID 1, the holder of a C(.socket)
        unit, another registered service or a socket in another network namespace; it fails the start
        with a message instead.
      - A port taken back right after its eviction, by a supervisor or a loop that respawns the squatter,
        fails the start with exit code 4 and a C(retaken) receipt naming the new holder and its parent.
        A respawn of what it evicted less than a minute before is named again and not killed again.
      - The helper runs under a fixed C(/bin/sh) script. When the helper, one of its module files or
        O(eviction.helper_python) is missing, or the helper fails unexpectedly, the start goes on as it
        would without the drop-in, with a warning in the unit's journal that names what is missing.
      - V(fuser) runs C(fuser --kill --namespace PROTOCOL PORT) as root, which sends SIGKILL to every
        process using the port, connected clients included, and leaves no receipt. It needs the C(psmisc) package.
      - V(none) writes no C(port-cleanup.conf), and removes one this collection wrote.
    type: str
    choices: [evict, fuser, none]
    default: evict
  eviction:
    description:
      - Settings of the eviction helper, used when O(cleanup_method=evict).
    type: dict
    default: {}
    suboptions:
      grace_sec:
        description:
          - Seconds between SIGTERM and SIGKILL. From 0.1 to 60.
        type: float
        default: 2
      timeout_sec:
        description:
          - The most the helper ever takes, in seconds, longer than O(eviction.grace_sec) and at most 300.
            It counts against the unit's C(TimeoutStartSec).
        type: float
        default: 10
      helper_dir:
        description:
          - Where the helper is installed.
        type: path
        default: /usr/local/lib/collision-guard
      helper_python:
        description:
          - The Python that runs the helper, started with C(-I) so the unit's environment cannot redirect it.
        type: path
        default: /usr/bin/python3
  restart_policy:
    description:
      - The C(restart-policy.conf) drop-in. It keeps systemd's start limit from failing a unit for good,
        and spaces its restarts.
      - C(Restart=) itself is left to the unit unless O(restart_policy.restart) is set. A unit with no
        C(Restart=) is not restarted automatically; the policy then only governs the start limit.
    type: dict
    default: {}
    suboptions:
      enabled:
        description:
          - Write the drop-in. With V(false), a C(restart-policy.conf) this collection wrote is removed.
        type: bool
        default: true
      start_limit_interval_sec:
        description:
          - C(StartLimitIntervalSec=). V(0) turns the start limit off, so the unit never gives up.
        type: float
        default: 0
      start_limit_burst:
        description:
          - C(StartLimitBurst=), the starts allowed within O(restart_policy.start_limit_interval_sec).
        type: int
        default: 5
      restart_sec:
        description:
          - C(RestartSec=), the delay before an automatic restart.
        type: float
        default: 1
      restart_steps:
        description:
          - C(RestartSteps=), the number of steps from O(restart_policy.restart_sec) up to
            O(restart_policy.restart_max_delay_sec). Written on systemd 254 and newer only, which
            know it; V(0) writes neither.
        type: int
        default: 5
      restart_max_delay_sec:
        description:
          - C(RestartMaxDelaySec=), the longest delay between restarts. Written on systemd 254 and newer only.
        type: float
        default: 30
      restart:
        description:
          - C(Restart=) for the units. Empty leaves each unit's own setting alone.
          - An entry's own C(restart) wins over it.
          - Neither weakens a unit. When the unit's own files set a C(Restart=) that restarts it after some exit
            this value would not (C(always) against C(on-failure)), no C(Restart=) is written and a warning says so.
            The collection's own C(restart-policy.conf) is not one of the unit's own files.
          - Entries that name one unit differently (an alias and its unit, a glob and a name) and ask for different
            C(restart) values fail the host with nothing changed.
        type: str
        choices: ['', 'no', on-success, on-failure, on-abnormal, on-watchdog, on-abort, always]
        default: ''
  never_evict:
    description:
      - Globs of units the eviction helper never evicts, whoever they are, and written to the host's registry file.
      - Units from a vendor unit directory (packaged daemons) are spared too, unless an entry's C(evict_holders)
        names them.
    type: list
    elements: str
    default: [ssh.service, sshd.service, ssh.socket, sshd.socket, ssh@*.service, systemd-*, dbus.service,
              dbus.socket, dbus-broker.service, init.scope, user@*.service, getty@*.service, serial-getty@*.service]
  exclusive:
    description:
      - Also remove the C(port-cleanup.conf) and C(restart-policy.conf) this collection wrote (found by their
        managed-by header) for units that are no longer in O(registry), or no longer on the host.
    type: bool
    default: false
  state:
    description:
      - V(absent) removes every C(port-cleanup.conf) and C(restart-policy.conf) this collection wrote, whatever
        O(registry) says; systemd is not asked about its units. Files it did not write are left alone.
    type: str
    choices: [present, absent]
    default: present
  unit_dir:
    description:
      - Directory holding the units' drop-in directories.
    type: path
    default: /etc/systemd/system
  probe_files:
    description:
      - Paths to look at, without following links, returned in RV(probed_files). Nothing is written there.
      - The P(qwf.collision_guard.harden#role) role asks here for the files and directories it manages, so a rerun
        leaves alone the ones that already hold what it would write, without a round trip for each.
    type: list
    elements: path
    default: []
  probe_chains:
    description:
      - Directories to look at together with every directory above them, from C(/) down, returned in
        RV(probed_chains). The role checks there that only root can change the helper's directory.
    type: list
    elements: path
    default: []
  reserved_ports:
    description:
      - Whether M(qwf.collision_guard.reserved_ports) would change anything for the registered ports present here, with
        this C(state) (V(present) or V(absent)) and sysctl file C(path); returned in RV(reserved_ports_due). The same
        decision as that module's, so harden runs it only when it would.
    type: dict
    suboptions:
      state:
        description: V(present) reserves the ports; V(absent) releases those the collection added.
        type: str
        choices: [present, absent]
        default: present
      path:
        description: The collection's sysctl file.
        type: path
        default: /etc/sysctl.d/99-zz-collision-guard.conf
  probe_units:
    description:
      - Units whose state to return in RV(probed_units), such as the monitor's timer.
    type: list
    elements: str
    default: []
notes:
  - The first line of every file written is a marker naming this collection, so the collection can find its own files.
  - The V(fuser) drop-in uses a command name without a path, which needs systemd 239 or newer.
  - With O(cleanup_method=evict), the helper must be installed (the P(qwf.collision_guard.harden#role) role does it);
    the module warns when it is missing.
seealso:
  - name: systemd.unit(5)
    description: Drop-in directories and how systemd merges them.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemd.unit.html
"""

EXAMPLES = r"""
- name: Validate the registry on the controller
  qwf.collision_guard.validate_registry:
    registry: "{{ collision_guard_registry }}"
  run_once: true
  register: validated

- name: Write port-cleanup drop-ins
  qwf.collision_guard.guard_dropins:
    registry: "{{ validated.registry }}"
  register: guard

- name: Reload systemd when a drop-in changed
  ansible.builtin.systemd_service:
    daemon_reload: true
  when: guard is changed
"""

RETURN = r"""
protected:
  description:
    - The units present on the host, with their drop-ins, their systemd states and whether a drop-in changed.
    - C(path) is the unit's C(port-cleanup.conf), or null with O(cleanup_method=none). C(dropins) also holds the
      C(port-cleanup.conf) of its socket units.
    - C(sockets) are the socket units that trigger it on a registered port, which get a C(port-cleanup.conf) of
      their own, and C(socket_activated) says whether one of them is active.
    - C(registered_as) are the names the registry gave it (aliases and globs).
    - C(restart_note) says why its own C(Restart=) was kept, or is null.
  returned: success
  type: list
  elements: dict
  sample:
    - service: sms-webhook.service
      path: /etc/systemd/system/sms-webhook.service.d/port-cleanup.conf
      dropins:
        - /etc/systemd/system/sms-webhook.service.d/port-cleanup.conf
        - /etc/systemd/system/sms-webhook.service.d/restart-policy.conf
      ports: ["8765/tcp"]
      load_state: loaded
      active_state: active
      sockets: []
      socket_activated: false
      registered_as: [sms-webhook.service]
      restart_note: null
      changed: true
registry:
  description: The entries whose unit is on this host, each with its unit's canonical name.
  returned: success
  type: list
  elements: dict
  sample:
    - {port: 5432, protocol: tcp, service: postgresql@15-main.service, address: null, restart: "",
       evict_holders: [], notes: ""}
host_registry:
  description: The registry as the host's registry file holds it, for the eviction helper, the monitor and agents.
    The entries present here under their canonical names (RV(registry)), then the absent ones as the registry
    names them, so a unit that is registered but not found is still never evicted.
  returned: success
  type: list
  elements: dict
  sample:
    - {port: 5432, protocol: tcp, service: postgresql@15-main.service, address: null, restart: "",
       evict_holders: [], notes: ""}
    - {port: 9100, protocol: tcp, service: billing-worker.service, address: null, restart: "",
       evict_holders: [], notes: ""}
probed_files:
  description:
    - Each path of O(probe_files) and what is there, not following a link. C(type) is V(file), V(directory),
      V(link) or V(other); C(mode) the permission bits; C(sha1) the checksum of a regular file, else null.
  returned: success
  type: dict
  sample:
    /etc/collision-guard/registry.json: {exists: true, path: /etc/collision-guard/registry.json, type: file, uid: 0,
                                         gid: 0, group: root, mode: "0644", sha1: 2aae6c35c94fcfb415dbe95f408b9ce91ee846ed}
    /etc/collision-guard/PORTS.md: {exists: false, path: /etc/collision-guard/PORTS.md}
probed_chains:
  description: Each path of O(probe_chains) and the RV(probed_files) kind of look at C(/) and each directory down to it.
  returned: success
  type: dict
  sample:
    /usr/local/lib/collision-guard:
      - {exists: true, path: /, type: directory, uid: 0, gid: 0, owner: root, group: root, mode: "0755", sha1: null,
         group_writable: false, other_writable: false}
      - {exists: false, path: /usr/local/lib/collision-guard}
reserved_ports_due:
  description:
    - With O(reserved_ports), whether M(qwf.collision_guard.reserved_ports) would change the sysctl file, its mode or the
      value in force, or has a warning to give; null without it.
  returned: success
  type: bool
  sample: false
probed_units:
  description: Each unit of O(probe_units) with its C(LoadState), C(ActiveState) and C(UnitFileState).
  returned: success
  type: dict
  sample:
    collision-guard-monitor.timer: {LoadState: loaded, ActiveState: active, UnitFileState: enabled}
daemon_reload:
  description: Whether systemd must reload its units, because a drop-in changed now or a unit's files changed since the last reload.
  returned: success
  type: bool
  sample: true
fuser_found:
  description: Whether C(fuser), which the V(fuser) drop-ins call, is installed on the host.
  returned: success
  type: bool
  sample: true
systemd_version:
  description: The host's systemd version, which decides whether the restart backoff is written.
  returned: success
  type: int
  sample: 252
removed:
  description: The drop-ins of units outside the plan that were removed (or would be, in check mode), with
    O(exclusive=true) or O(state=absent).
  returned: success
  type: list
  elements: str
  sample: [/etc/systemd/system/old-api.service.d/port-cleanup.conf]
absent:
  description: Registry entries whose unit does not exist on this host. They are left alone.
  returned: success
  type: list
  elements: dict
  sample:
    - port: 9100
      service: billing-worker.service
      protocol: tcp
      notes: ""
"""

import glob
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import (
    CLEANUP_METHODS,
    DEFAULT_HELPER_DIR,
    DEFAULT_HELPER_PYTHON,
    DROPIN_NAMES,
    PORT_CLEANUP_NAME,
    PRIVATE_TMP_NAME,
    RESTART_POLICY_NAME,
    cleanup_problems,
    dropin_path,
    helper_path,
    is_managed,
    parse_systemd_version,
    plan_dropins,
    plan_purge,
    restart_policy_problems,
    unit_of_dropin,
    units_in_order,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import path_chain, probe_path, read_bytes, read_text
from ansible_collections.qwf.collision_guard.plugins.module_utils._module_files import sync_dropin
from ansible_collections.qwf.collision_guard.plugins.module_utils._ownership import (
    Judge,
    arm_problems,
    survey,
    trigger_sockets_on_ports,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    DEFAULT_NEVER_EVICT,
    RESTART_VALUES,
    entry_label,
    ephemeral_port_warnings,
    never_evict_problems,
    parse_port_range,
    unit_settings,
    validate_registry,
    without_default_settings,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sockets import ancestor_units
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import ask_systemd, module_systemd
from ansible_collections.qwf.collision_guard.plugins.module_utils._reserved_ports import reservation_plan
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import restart_setting
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import UNIT_TYPES, unit_name_problem

PROBED_UNIT_PROPERTIES = ('LoadState', 'ActiveState', 'UnitFileState')


def managed_dropins(unit_dir):
    """The collection's own drop-ins under ``unit_dir``, found by their first line."""
    found = []
    for name in DROPIN_NAMES:
        for path in glob.glob(os.path.join(glob.escape(unit_dir), '*.d', name)):
            if is_managed(to_text(read_bytes(path) or b'', errors='surrogate_or_replace')):
                found.append(path)
    return sorted(found)


def settings(params):
    """The cleanup and restart settings from the module's params, after checking them."""
    cleanup = dict(params['eviction'], method=params['cleanup_method'])
    policy = dict(params['restart_policy'])
    problems = ['eviction.%s' % problem if not problem.startswith('method') else 'cleanup_method' + problem[6:]
                for problem in cleanup_problems(cleanup)]
    if policy.pop('enabled'):
        problems.extend('restart_policy.%s' % problem for problem in restart_policy_problems(policy))
    else:
        policy = None
    if problems:
        raise CollisionGuardError('%d bad setting(s)' % len(problems), problems)
    return cleanup, policy


def own_restart(view, unit, unit_dir):
    """The Restart= that ``unit``'s own files set: its unit file and drop-ins, without the collection's.

    Only the collection's own ``restart-policy.conf`` is left out, the file
    this run writes; a file of that name anywhere else is the unit's own.
    """
    ours = dropin_path(unit, RESTART_POLICY_NAME, unit_dir)
    paths = [view.get(unit, 'FragmentPath')] + [path for path in view.words(unit, 'DropInPaths')
                                                if os.path.normpath(path) != os.path.normpath(ours)]
    return restart_setting([to_text(read_bytes(path) or b'', errors='surrogate_or_replace') for path in paths if path])


def stale_socket_dropins(view, present, sockets, dropins, unit_dir):
    """``{path: service}``: the collection's drop-ins of socket units that no longer get one, to be removed.

    A socket unit that triggers a present service but no longer listens on
    one of its registered ports would still free the old ports at its start.
    """
    stale = {}
    for service in sorted(present):
        for socket in view.trigger_sockets(service):
            path = dropin_path(socket, PORT_CLEANUP_NAME, unit_dir)
            if socket in sockets.get(service, []) or path in dropins:
                continue
            if is_managed(to_text(read_bytes(path) or b'', errors='surrogate_or_replace')):
                stale[path] = service
    return stale


def plan(module, registry, cleanup, policy):
    """Survey the host, look before arming, and plan the drop-ins; CollisionGuardError says why not.

    Returns ``(found, dropins, owners, sockets, notes, systemd_version)``: ``owners`` maps each socket unit
    with a drop-in in ``dropins`` to the service it belongs to.
    """
    show, run = module_systemd(module)
    present_state = module.params['state'] == 'present'
    # state=absent removes the collection's files whatever the registry says: nothing to ask systemd about.
    found = survey(registry if present_state else [], show, run)
    systemd_version = parse_systemd_version(ask_systemd(module, ['systemctl', '--version'], 'its version'))
    if not present_state:
        return found, {}, {}, {}, {}, systemd_version
    if found['problems']:
        raise CollisionGuardError('the registry does not fit this host; nothing was changed', found['problems'])
    entries = found['entries']
    judge = Judge(entries, found['view'], module.params['never_evict'], absent=found['absent'])
    problems, warnings = arm_problems(judge, found['listeners'], ancestor_units(os.getpid()))
    if problems:
        raise CollisionGuardError('the registered ports cannot be armed on this host (%d problem(s)); nothing was '
                                  'changed' % len(problems), problems)
    for warning in warnings:
        module.warn(warning)
    sockets = trigger_sockets_on_ports(judge, found['socket_units'])
    present = set(entry['service'] for entry in entries)
    unit_dir = module.params['unit_dir']
    restarts = dict((unit, own_restart(found['view'], unit, unit_dir)) for unit in present) if policy else {}
    dropins, dummy_absent, notes = plan_dropins(entries, present, cleanup, policy, systemd_version, unit_dir,
                                                sockets, restarts)
    owners = dict((socket, service) for service in sockets for socket in sockets[service])
    for path, service in stale_socket_dropins(found['view'], present, sockets, dropins, unit_dir).items():
        dropins[path] = {'unit': unit_of_dropin(path), 'content': None}
        owners[unit_of_dropin(path)] = service
    return found, dropins, owners, sockets, notes, systemd_version


def main():
    module = AnsibleModule(
        argument_spec=dict(
            registry=dict(type='list', elements='dict', required=True),
            cleanup_method=dict(type='str', choices=list(CLEANUP_METHODS), default='evict'),
            eviction=dict(type='dict', default={}, options=dict(
                grace_sec=dict(type='float', default=2),
                timeout_sec=dict(type='float', default=10),
                helper_dir=dict(type='path', default=DEFAULT_HELPER_DIR),
                helper_python=dict(type='path', default=DEFAULT_HELPER_PYTHON),
            )),
            restart_policy=dict(type='dict', default={}, options=dict(
                enabled=dict(type='bool', default=True),
                start_limit_interval_sec=dict(type='float', default=0),
                start_limit_burst=dict(type='int', default=5),
                restart_sec=dict(type='float', default=1),
                restart_steps=dict(type='int', default=5),
                restart_max_delay_sec=dict(type='float', default=30),
                restart=dict(type='str', default='', choices=[''] + list(RESTART_VALUES)),
            )),
            never_evict=dict(type='list', elements='str', default=list(DEFAULT_NEVER_EVICT)),
            exclusive=dict(type='bool', default=False),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            unit_dir=dict(type='path', default='/etc/systemd/system'),
            probe_files=dict(type='list', elements='path', default=[]),
            probe_chains=dict(type='list', elements='path', default=[]),
            reserved_ports=dict(type='dict', options=dict(
                state=dict(type='str', choices=['present', 'absent'], default='present'),
                path=dict(type='path', default='/etc/sysctl.d/99-zz-collision-guard.conf'),
            )),
            probe_units=dict(type='list', elements='str', default=[]),
        ),
        supports_check_mode=True,
    )

    try:
        # Validated again here: this module writes root-owned unit files, so
        # it trusts no caller, and normalised input passes unchanged.
        registry = validate_registry(module.params['registry'], where='registry')
        problems = never_evict_problems(module.params['never_evict'], where='never_evict')
        if problems:
            raise CollisionGuardError('never_evict has %d bad value(s)' % len(problems), problems)
        cleanup, policy = settings(module.params)
        bad_units = ['probe_units: %s' % problem for problem in (unit_name_problem(name, types=UNIT_TYPES) for name in module.params['probe_units'])
                     if problem]
        if bad_units:
            raise CollisionGuardError('probe_units has %d bad unit name(s)' % len(bad_units), bad_units)
        found, dropins, owners, sockets, notes, systemd_version = plan(module, registry, cleanup, policy)
    except CollisionGuardError as error:
        module.fail_json(msg='Cannot plan the drop-ins: %s' % error.full_message())
    view = found['view']
    entries = found['entries']
    present = set(entry['service'] for entry in entries)
    purge = {}
    if module.params['exclusive'] or module.params['state'] == 'absent':
        purge = plan_purge(managed_dropins(module.params['unit_dir']), dropins)

    if cleanup['method'] == 'evict' and present:
        if not os.access(cleanup['helper_python'], os.X_OK):
            module.fail_json(msg='eviction.helper_python: %s is not an executable on this host; '
                                 'the drop-ins would fail every start' % cleanup['helper_python'])
        # In check mode the role has not installed it yet either.
        if not module.check_mode and not os.path.exists(helper_path(cleanup['helper_dir'])):
            module.warn('The eviction helper %s is not installed; starts of the protected units fail until it is '
                        '(the qwf.collision_guard.harden role installs it).' % helper_path(cleanup['helper_dir']))

    # The fleet-wide check assumed the default range; this host's own is what matters here.
    ephemeral = parse_port_range(to_text(read_bytes('/proc/sys/net/ipv4/ip_local_port_range') or b''))
    for warning in ephemeral_port_warnings(entries, ephemeral):
        module.warn('On this host, %s' % warning)
    for unit in sorted(notes):
        module.warn('%s %s' % (unit, notes[unit]))

    units = {}
    diffs = []
    removed = []
    restart_due = []
    for path in sorted(purge):
        changed, diff = sync_dropin(module, path, None)
        if changed:
            diffs.append(diff)
            removed.append(path)
    for path in sorted(dropins):
        dropin = dropins[path]
        changed, diff = sync_dropin(module, path, dropin['content'])
        if diff:
            diffs.append(diff)
        owner = owners.get(dropin['unit'], dropin['unit'])
        unit = units.setdefault(owner, {'changed': False, 'dropins': [], 'path': None})
        unit['changed'] = unit['changed'] or changed
        if changed and os.path.basename(path) == PRIVATE_TMP_NAME and view.active(dropin['unit']):
            restart_due.append((dropin['unit'], dropin['content'] is not None))
        if dropin['content'] is not None:
            unit['dropins'].append(path)
            if os.path.basename(path) == PORT_CLEANUP_NAME and dropin['unit'] == owner:
                unit['path'] = path

    registered_as = {}
    for entry, original in zip_resolved(registry, entries):
        registered_as.setdefault(entry['service'], [])
        if original['service'] not in registered_as[entry['service']]:
            registered_as[entry['service']].append(original['service'])
    protected = []
    for name in units_in_order(entries):
        if name not in units:
            continue
        protected.append(dict(units[name], service=name, load_state=view.get(name, 'LoadState'),
                              active_state=view.get(name, 'ActiveState'), sockets=sockets.get(name, []),
                              socket_activated=any(view.active(socket) for socket in sockets.get(name, [])),
                              registered_as=registered_as.get(name, []),
                              restart_note=notes.get(name),
                              ports=[entry_label(entry) for entry in entries if entry['service'] == name],
                              **unit_settings(entries, name)))

    # harden never restarts a service; a namespace is set up at start only.
    for name, private in restart_due:
        module.warn('%s %s at its next start (systemctl restart %s); until then it keeps the /tmp it started with' % (
            name, ('would get' if module.check_mode else 'gets') + (' a /tmp of its own' if private else ' the shared /tmp back'),
            name))

    # A reload can be due although no byte changes now: an earlier run that
    # wrote files may have failed before its reload.
    watched = list(present) + [socket for service in sockets for socket in sockets[service]]
    reload_due = bool(diffs) or any(view.get(unit, 'NeedDaemonReload') == 'yes' for unit in watched)

    module.exit_json(
        changed=any(unit['changed'] for unit in protected) or bool(removed) or reload_due,
        daemon_reload=reload_due,
        protected=protected,
        absent=found['absent'],
        removed=removed,
        registry=entries,
        host_registry=[without_default_settings(entry) for entry in entries + list(found['absent'])],
        fuser_found=module.get_bin_path('fuser') is not None,
        systemd_version=systemd_version,
        probed_files=dict((path, probe_path(path)) for path in module.params['probe_files']),
        probed_chains=dict((path, [probe_path(step) for step in path_chain(path)]) for path in module.params['probe_chains']),
        probed_units=probe_units(module, module.params['probe_units']),
        reserved_ports_due=reservation_due(module.params['reserved_ports'], entries),
        diff=diffs,
    )


def reservation_due(settings, entries):
    """Whether reserved_ports would do anything for ``entries``' ports, decided as that module decides; None if not asked."""
    if not settings:
        return None
    wanted = set(entry['port'] for entry in entries) if settings['state'] == 'present' else set()
    try:
        plan = reservation_plan(wanted, settings['path'], read_text, glob.glob)
    except CollisionGuardError:
        return True  # the module itself says what is wrong
    try:
        loose = plan['file'] is not None and stat.S_IMODE(os.lstat(settings['path']).st_mode) != 0o644
    except OSError:
        loose = plan['file'] is not None
    return not plan['file_current'] or plan['value'] != plan['live'] or loose or bool(plan['problems'])


def probe_units(module, units):
    """The load, active and enablement state of ``units``, in one question to systemd."""
    show, dummy_run = module_systemd(module)
    return show(units, PROBED_UNIT_PROPERTIES) if units else {}


def zip_resolved(registry, entries):
    """Pairs of (resolved entry, the registry entry it came from), matched by port, protocol and address."""
    pairs = []
    for entry in entries:
        for original in registry:
            if (original['port'], original['protocol'], original['address']) == \
                    (entry['port'], entry['protocol'], entry['address']):
                pairs.append((entry, original))
                break
    return pairs


if __name__ == '__main__':
    main()
