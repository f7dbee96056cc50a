# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.qwf.collision_guard.plugins.module_utils._collision_map import (
    build_map,
    registry_draft,
    render_json,
    render_markdown,
)


class ActionModule(ActionBase):
    """Render the collision map on the controller from the hosts' discovery results."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('hosts',))
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        dummy, args = self.validate_argument_spec(argument_spec=dict(
            hosts=dict(type='dict', required=True),
        ))
        rows = build_map(args['hosts'])
        result.update(
            changed=False,
            rows=rows,
            markdown=render_markdown(rows),
            json=render_json(rows),
            registry_draft=registry_draft(args['hosts']),
        )
        return result
