# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import build_program, read_module_utils


class ActionModule(ActionBase):
    """Build the host programs on the controller, then write them with the files in one module run."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('directories', 'files', 'programs'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        files = list(args.get('files') or [])
        for program in args.pop('programs', None) or []:
            try:
                source_path = self._find_needle('files', program['src'])
                with open(to_bytes(source_path, errors='surrogate_or_strict'), 'rb') as handle:
                    built = build_program(handle.read(), read_module_utils(), program['description'])
            except KeyError as error:
                raise AnsibleActionFail('programs: each needs src, dest and description (%s is missing)' % error)
            except (CollisionGuardError, IOError, OSError, SyntaxError) as error:
                raise AnsibleActionFail('cannot build %s: %s' % (program.get('src'), to_text(error)))
            files.append({'path': program['dest'], 'content_base64': to_text(base64.b64encode(built)),
                          'mode': '0644', 'diff': False})
        args['files'] = files
        if not files and not args.get('directories'):
            result.update(changed=False, written=[])
            return result
        result.update(self._execute_module(module_name='qwf.collision_guard.managed_files', module_args=args,
                                           task_vars=task_vars))
        return result
