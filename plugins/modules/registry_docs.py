#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: registry_docs
short_description: Keep a managed block, such as the port registry table, in files that other accounts may own
version_added: 0.1.0
description:
  - Puts O(block) between two marker lines in each file of O(paths), as M(ansible.builtin.blockinfile) with
    C(insertafter=EOF) does, byte for byte, or removes the block with O(state=absent). The rest of each file is
    left as it is.
  - Made for files in directories that other accounts control, such as a project's C(AGENTS.md) in a directory
    its agents own, where M(ansible.builtin.blockinfile) would follow a symbolic link planted there and write,
    as root, to whatever file it points at.
  - A file is rewritten only when its content changes. The new content goes into a temp file in a directory
    only root can enter, made inside the file's directory; it gets the old file's mode and owner (by its file
    descriptor), then replaces the file in one rename, which replaces a link planted meanwhile without following it.
  - A path is refused, with a warning naming it and what it is, and left untouched, when it is a symbolic link,
    not a regular file, or a file with other hard links, when its directory is reached through a symbolic link
    in a directory another account can write, or when it is missing and so is its directory.
    The other files are still handled, and the task does not fail. RV(refused) lists them.
  - A missing file is created with mode C(0644), owned by root, when O(state=present).
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports the files it would change, with their diff, and changes none.
  diff_mode:
    support: full
    description: Returns the before and after of every file it changes.
  platform:
    support: full
    platforms: posix
    description: Linux.
options:
  paths:
    description:
      - Absolute paths of the files that carry the block.
    type: list
    elements: path
    required: true
  block:
    description:
      - The text between the markers. An empty block removes the block, like O(state=absent).
    type: str
    default: ''
  marker:
    description:
      - The marker lines around the block, one line with C({mark}), which becomes C(BEGIN) or C(END).
    type: str
    default: "<!-- {mark} qwf.collision_guard port registry -->"
  state:
    description:
      - V(absent) removes the block and its markers, and leaves the files otherwise as they are.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The P(qwf.collision_guard.harden#role) role keeps the registry table in the files of C(collision_guard_registry_docs)
    with this module.
"""

EXAMPLES = r"""
- name: Keep the registry table in the project's instructions for agents
  qwf.collision_guard.registry_docs:
    paths: [/srv/project/AGENTS.md]
    block: |
      | port | service |
      |---|---|
      | 8765 | sms-webhook.service |

- name: Remove it again
  qwf.collision_guard.registry_docs:
    paths: [/srv/project/AGENTS.md]
    state: absent
"""

RETURN = r"""
docs:
  description: One entry per path of O(paths), in their order.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: The path.
      type: str
      sample: /srv/project/AGENTS.md
    outcome:
      description: V(unchanged), V(created), V(updated), V(block removed) or V(refused); in check mode, what would be done.
      type: str
      sample: updated
    reason:
      description: Why the path was refused; empty otherwise.
      type: str
      sample: ''
  sample: [{path: /srv/project/AGENTS.md, outcome: updated, reason: ''}]
refused:
  description: A line per refused path, naming it and what it is.
  returned: success
  type: list
  elements: str
  sample: ["/srv/project/AGENTS.md: not written: is a symbolic link, not a regular file"]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native, to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import (
    open_directory,
    read_plain_file,
    replace_file,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._managed_block import (
    DEFAULT_MARKER,
    marker_problem,
    with_block,
)

NEW_FILE_MODE = 0o644


def sync_doc(path, block, marker, present, check_mode):
    """Bring one file to its wanted content. Returns ``(outcome, diff or None)``; raises CollisionGuardError to refuse."""
    directory, name = os.path.split(path)
    if not name or name in ('.', '..'):
        raise CollisionGuardError('is not a path to a file')
    if not present and not os.path.lexists(directory):
        return 'unchanged', None
    dir_fd = open_directory(directory)
    try:
        before, before_stat = read_plain_file(dir_fd, name)
        if before is None and not present:
            return 'unchanged', None
        after = with_block(before, block, marker, present)
        if before == after:
            return 'unchanged', None
        if before is None:
            outcome = 'created'
        elif present and block:
            outcome = 'updated'
        else:
            outcome = 'block removed'
        if not check_mode:
            if before_stat is None:
                replace_file(dir_fd, name, after, NEW_FILE_MODE)
            else:
                replace_file(dir_fd, name, after, before_stat.st_mode, before_stat.st_uid, before_stat.st_gid)
    finally:
        os.close(dir_fd)
    return outcome, {'before_header': path, 'after_header': path,
                     'before': to_text(before or b'', errors='surrogate_or_replace'),
                     'after': to_text(after, errors='surrogate_or_replace')}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='path', required=True),
            block=dict(type='str', default=''),
            marker=dict(type='str', default=DEFAULT_MARKER),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        supports_check_mode=True,
    )
    marker = module.params['marker']
    problem = marker_problem(marker)
    if problem:
        module.fail_json(msg='Cannot keep the registry docs: %s' % problem)
    present = module.params['state'] == 'present'
    docs, refused, diffs = [], [], []
    for path in module.params['paths']:
        reason = ''
        try:
            if not path.startswith('/'):
                raise CollisionGuardError('is not an absolute path')
            outcome, diff = sync_doc(path, module.params['block'], marker, present, module.check_mode)
        except CollisionGuardError as error:
            outcome, diff, reason = 'refused', None, str(error)
        except (IOError, OSError) as error:
            module.fail_json(msg='Cannot write %s: %s' % (path, to_native(error)),
                             docs=docs, refused=refused, changed=bool(diffs), diff=diffs)
        if reason:
            line = '%s: not written: %s' % (path, reason)
            refused.append(line)
            module.warn(line)
        if diff:
            diffs.append(diff)
        docs.append({'path': path, 'outcome': outcome, 'reason': reason})
    module.exit_json(changed=bool(diffs), docs=docs, refused=refused, diff=diffs)


if __name__ == '__main__':
    main()
