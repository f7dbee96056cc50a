# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._prevention import prevent_in_problems
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (
    DEFAULT_NEVER_EVICT,
    both_protocols_problems,
    never_evict_problems,
    registry_warnings,
    validate_registry,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._sqlite import normalise_sqlite, sqlite_problems


def hosts_with_another_registry(task_vars, name):
    """Hosts of the play whose registry variable differs from this host's.

    Validation runs once, with the first host's value, so a host that holds
    another registry would otherwise be hardened with one it never had.
    Checked only when the registry comes from inventory or extra vars.
    """
    hostvars = task_vars.get('hostvars')
    me = task_vars.get('inventory_hostname')
    if not hostvars or me is None or not name.isidentifier():
        return []
    mine = hostvars[me].get(name)
    if mine is None:
        return []
    return [host for host in task_vars.get('ansible_play_hosts_all', [])
            if host != me and hostvars[host].get(name) != mine]


def check_values(registry, source, never_evict, both_protocols='allow', prevent_in=None, sqlite=None):
    """``(entries, problems)``: the registry normalised, and every bad value of it, ``never_evict``, ``prevent_in``
    and ``sqlite`` in one list.

    A registry that is not a list at all raises CollisionGuardError.
    """
    problems = []
    entries = []
    try:
        entries = validate_registry(registry, where=source)
    except CollisionGuardError as error:
        if not error.problems:
            raise
        problems.extend(error.problems)
    problems.extend(never_evict_problems(never_evict))
    if both_protocols == 'error':
        problems.extend(both_protocols_problems(entries, source))
    if prevent_in is not None:
        problems.extend(prevent_in_problems(prevent_in))
    if sqlite is not None:
        problems.extend(sqlite_problems(sqlite))
    return entries, problems


class ActionModule(ActionBase):
    """Validate the registry on the controller; no host is contacted."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('registry', 'source', 'both_protocols', 'never_evict', 'prevent_in', 'sqlite'))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        dummy, args = self.validate_argument_spec(argument_spec=dict(
            registry=dict(type='raw', required=True),
            source=dict(type='str', default='collision_guard_registry'),
            both_protocols=dict(type='str', choices=['allow', 'error'], default='allow'),
            never_evict=dict(type='raw', default=list(DEFAULT_NEVER_EVICT)),
            prevent_in=dict(type='raw'),
            sqlite=dict(type='raw'),
        ))
        try:
            entries, problems = check_values(args['registry'], args['source'], args['never_evict'],
                                             args['both_protocols'], args['prevent_in'], args['sqlite'])
        except CollisionGuardError as error:
            result.update(failed=True, msg=error.full_message(), problems=error.problems)
            return result
        if problems:
            error = CollisionGuardError('%s has %d bad value(s); no host was changed' % (
                args['source'], len(problems)), problems)
            result.update(failed=True, msg=error.full_message(), problems=problems)
            return result

        differing = hosts_with_another_registry(task_vars or {}, args['source'])
        if differing:
            result.update(failed=True, msg=(
                '%s differs between the hosts of this play: %s hold(s) another value than %s. '
                'One registry serves the whole fleet; define it once, in group_vars/all.'
                % (args['source'], ', '.join(differing), task_vars['inventory_hostname'])))
            return result

        # Legal but risky; each host's own ephemeral range is checked again by guard_dropins.
        for warning in registry_warnings(entries):
            self._display.warning('%s: %s' % (args['source'], warning))
        result.update(changed=False, registry=entries,
                      sqlite=normalise_sqlite(args['sqlite']) if args['sqlite'] is not None else [])
        return result
