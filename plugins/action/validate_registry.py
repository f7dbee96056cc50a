# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry


class ActionModule(ActionBase):
    """Validate the registry on the controller; no host is contacted."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('registry', 'source'))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        dummy, args = self.validate_argument_spec(argument_spec=dict(
            registry=dict(type='raw', required=True),
            source=dict(type='str', default='collision_guard_registry'),
        ))
        try:
            entries = validate_registry(args['registry'], where=args['source'])
        except CollisionGuardError as error:
            result.update(failed=True, msg=error.full_message(), problems=error.problems)
            return result

        result.update(changed=False, registry=entries)
        return result
