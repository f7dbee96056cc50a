#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: managed_files
short_description: Write the collection's own files on a host in one round trip, each only when it differs
version_added: 0.1.0
description:
  - Creates O(directories) and writes O(files), the files the P(qwf.collision_guard.harden#role) role keeps on a host
    (the registry, C(PORTS.md), the monitor's settings and units, the host programs), all in one module run.
  - A file is written only when its bytes differ, atomically (a reader sees the old file or the new one), with its
    mode from the start, owned by root. A symbolic link or other non-regular file at a path is replaced, never
    followed, and never read for the diff.
  - The action plugin of the same name builds the O(programs) on the controller, as Python zip applications of their
    entry script and exactly the collection module_utils they import, and sends them with the files.
author:
  - Collision Guard maintainers (@qwf)
attributes:
  check_mode:
    support: full
    description: Reports exactly the files and directories it would change, and changes none.
  diff_mode:
    support: full
    description: The before and after of each text file, unless its O(files[].diff) is false; a program's checksums.
  platform:
    support: full
    platforms: posix
    description: Writes as root; the host needs nothing but Python.
options:
  directories:
    description: Directories to create first, root's, each with its mode. An existing one gets its mode and owner.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: An absolute path.
        type: path
        required: true
      mode:
        description: Its mode, four octal digits.
        type: str
        default: "0755"
  files:
    description: The files, each written only when its content, mode or owner differs.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: An absolute path. Its directory must exist or be in O(directories).
        type: path
        required: true
      content:
        description: The text to write, as UTF-8. One of O(files[].content) and O(files[].content_base64).
        type: str
      content_base64:
        description: The bytes to write, base64-encoded.
        type: str
      mode:
        description: Its mode, four octal digits.
        type: str
        default: "0644"
      diff:
        description: Whether the diff may show the content. False for a file that may hold a secret.
        type: bool
        default: true
  programs:
    description:
      - For the action plugin. Host programs to build on the controller and write like O(files) (binary, mode C(0644)).
    type: list
    elements: dict
    default: []
    suboptions:
      src:
        description: The entry script, looked up in the role's or playbook's C(files) directories.
        type: str
        required: true
      dest:
        description: Where the program goes.
        type: path
        required: true
      description:
        description: One line about the program, written after the managed-by header at the top of the file.
        type: str
        required: true
notes:
  - The action plugin does not contact the host when given nothing to write.
"""

EXAMPLES = r"""
- name: Write the registry files and install the eviction helper
  qwf.collision_guard.managed_files:
    directories:
      - {path: /etc/collision-guard}
      - {path: /usr/local/lib/collision-guard}
    files:
      - {path: /etc/collision-guard/registry.json, content: "{{ registry | to_nice_json }}\n"}
      - {path: /etc/collision-guard/monitor.json, content: "{{ settings | to_json }}\n", mode: "0600", diff: false}
    programs:
      - src: collision-guard-evict
        dest: /usr/local/lib/collision-guard/collision-guard-evict
        description: The eviction helper of qwf.collision_guard
"""

RETURN = r"""
written:
  description: The paths of the files and directories that changed (or would, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/collision-guard/registry.json]
"""

import base64
import hashlib
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import write_atomically


def current_bytes(path):
    """The bytes of the regular file at ``path``, or None for a missing path, a link or anything else."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, 'O_CLOEXEC', 0))
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                return b''.join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def shown(content, allowed):
    """A diff side: the text, or a line that names the bytes without showing them."""
    if content is None:
        return ''
    if allowed:
        try:
            return content.decode('utf-8')
        except UnicodeDecodeError:
            pass
    return '(%d bytes, sha1 %s)\n' % (len(content), hashlib.sha1(content).hexdigest())


def ensure_attributes(module, path, mode, changed):
    """Mode and root ownership, check mode aware; whether they changed."""
    changed = module.set_mode_if_different(path, mode, changed)
    changed = module.set_owner_if_different(path, 'root', changed)
    return module.set_group_if_different(path, 'root', changed)


def sync_directory(module, entry):
    path, mode = entry['path'], entry['mode']
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
        module.fail_json(msg='%s is not a directory (a link, or a file); nothing there was changed' % path)
    if not os.path.exists(path):
        if not module.check_mode:
            os.makedirs(path, int(mode, 8))
            ensure_attributes(module, path, mode, True)
        return True
    return ensure_attributes(module, path, mode, False)


def sync_file(module, entry):
    """Write one file when it differs; ``(changed, diff or None)``."""
    path = entry['path']
    if entry.get('content_base64') is not None:
        desired = base64.b64decode(entry['content_base64'])
    else:
        desired = to_bytes(entry['content'] if entry.get('content') is not None else '', errors='surrogate_or_strict')
    before = current_bytes(path)
    # The mode first: atomic_move gives the new file the old one's mode, and a secret must not land in a loose file.
    attributes_changed = ensure_attributes(module, path, entry['mode'], False) if before is not None else False
    diff = None
    if before != desired:
        diff = {'before_header': path, 'after_header': path, 'before': shown(before, entry['diff']),
                'after': shown(desired, entry['diff'])}
        if not module.check_mode:
            try:
                write_atomically(path, desired, module.atomic_move, mode=int(entry['mode'], 8))
            except (IOError, OSError) as error:
                module.fail_json(msg='Cannot write %s: %s' % (path, to_native(error)))
    if diff is not None and not module.check_mode:
        attributes_changed = ensure_attributes(module, path, entry['mode'], attributes_changed)
    return diff is not None or attributes_changed, diff


def main():
    module = AnsibleModule(
        argument_spec=dict(
            directories=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                mode=dict(type='str', default='0755'),
            )),
            files=dict(type='list', elements='dict', default=[], options=dict(
                path=dict(type='path', required=True),
                content=dict(type='str'),
                content_base64=dict(type='str'),
                mode=dict(type='str', default='0644'),
                diff=dict(type='bool', default=True),
            ), mutually_exclusive=[('content', 'content_base64')]),
            programs=dict(type='list', elements='dict', default=[], options=dict(
                src=dict(type='str', required=True),
                dest=dict(type='path', required=True),
                description=dict(type='str', required=True),
            )),
        ),
        supports_check_mode=True,
    )
    if module.params['programs']:
        module.fail_json(msg='programs are built by the managed_files action plugin, on the controller')
    problems = []
    for kind in ('directories', 'files'):
        for index, entry in enumerate(module.params[kind]):
            if not os.path.isabs(entry['path']):
                problems.append('%s[%d].path: %r is not an absolute path' % (kind, index, entry['path']))
            if not (len(entry['mode']) == 4 and all(char in '01234567' for char in entry['mode'])):
                problems.append('%s[%d].mode: %r is not four octal digits' % (kind, index, entry['mode']))
    if problems:
        module.fail_json(msg='Bad files; nothing was changed: %s' % '; '.join(problems))

    written, diffs = [], []
    for entry in module.params['directories']:
        if sync_directory(module, entry):
            written.append(entry['path'])
    for entry in module.params['files']:
        changed, diff = sync_file(module, entry)
        if changed:
            written.append(entry['path'])
        if diff:
            diffs.append(diff)
    module.exit_json(changed=bool(written), written=written, diff=diffs)


if __name__ == '__main__':
    main()
