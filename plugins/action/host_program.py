# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import build_program, read_module_utils
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._probe import probe_holds


class ActionModule(ActionBase):
    """Build one of the collection's host programs on the controller and install it as one file."""

    TRANSFERS_FILES = True
    _VALID_ARGS = frozenset(('src', 'dest', 'description', 'mode', 'current'))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp

        dummy, args = self.validate_argument_spec(argument_spec=dict(
            src=dict(type='str', required=True),
            dest=dict(type='str', required=True),
            description=dict(type='str', required=True),
            mode=dict(type='str', default='0644'),
            current=dict(type='dict'),
        ))
        try:
            source_path = self._find_needle('files', args['src'])
            with open(to_bytes(source_path, errors='surrogate_or_strict'), 'rb') as handle:
                program = build_program(handle.read(), read_module_utils(), args['description'])
        except CollisionGuardError as error:
            raise AnsibleActionFail('cannot build %s: %s' % (args['src'], error))
        except (IOError, OSError, SyntaxError) as error:
            raise AnsibleActionFail('cannot build %s: %s' % (args['src'], to_text(error)))
        checksum = hashlib.sha1(program).hexdigest()
        result.update(dest=args['dest'], checksum=checksum, size=len(program))

        # What the plan saw on the host is enough to know: nothing to send, no round trip.
        if probe_holds(args['current'], checksum, args['mode']):
            result.update(changed=False, transferred=False)
            return result

        new_task = self._task.copy()
        local_tempdir = tempfile.mkdtemp(dir=C.DEFAULT_LOCAL_TMP)
        try:
            built = os.path.join(local_tempdir, os.path.basename(args['dest']))
            with open(to_bytes(built, errors='surrogate_or_strict'), 'wb') as handle:
                handle.write(program)
            new_task.args = dict(src=built, dest=args['dest'], mode=args['mode'], owner='root', group='root')
            copy_action = self._shared_loader_obj.action_loader.get(
                'ansible.legacy.copy', task=new_task, connection=self._connection, play_context=self._play_context,
                loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)
            copied = copy_action.run(task_vars=task_vars)
        finally:
            shutil.rmtree(to_bytes(local_tempdir, errors='surrogate_or_strict'))
        copied.pop('src', None)
        result.update(copied)
        # In check mode copy reports what it would send, and sends nothing.
        result.update(checksum=checksum, size=len(program),
                      transferred=bool(copied.get('changed')) and not self._play_context.check_mode)
        return result
