# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host programs (the eviction helper, the ownership checker) as one file each.

A program is a Python zip application: its entry script as ``__main__.py``
and exactly the collection module_utils it imports, followed import by
import, under their package path. ``python3 -I PROGRAM`` runs it from the
archive, so no other ansible_collections on the host can shadow the code.
Built on the controller, in memory. The bytes depend on the sources alone:
entries are sorted, stored uncompressed, with a fixed time and mode, so an
unchanged collection gives the same checksum on every controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import zipfile

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._imports import (
    PACKAGE_DIRS,
    missing_modules,
    module_member,
)

MANAGED_HEADER = b'# Managed by qwf.collision_guard. Local edits are overwritten.\n'
# The earliest time a zip entry can carry.
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)
ENTRY_MODE = 0o100644 << 16
MODULE_UTILS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'module_utils')


def read_module_utils(directory=MODULE_UTILS_DIR):
    """``read_member(name)`` for ``missing_modules``: the source of the collection's module_utils ``name``, or None."""
    def read_member(name):
        path = os.path.join(directory, name + '.py')
        if not os.path.isfile(path):
            return None
        with open(path, 'rb') as handle:
            return handle.read()
    return read_member


def program_members(main_source, read_member):
    """``{member path: bytes}`` of the archive: ``__main__.py``, the package markers and the modules it needs."""
    needed, missing = missing_modules(main_source, read_member)
    if missing:
        raise CollisionGuardError('the program imports module_utils that the collection does not have',
                                  ['%s.py' % name for name in missing])
    members = {'__main__.py': main_source}
    for directory in PACKAGE_DIRS:
        members['%s/__init__.py' % directory] = b''
    for name in needed:
        members[module_member(name)] = read_member(name)
    return members


def build_program(main_source, read_member, description):
    """The program's bytes: the managed-by header, a line of ``description``, then the zip archive."""
    return program_bytes(program_members(main_source, read_member), description)


def program_bytes(members, description):
    """The header lines, then a zip archive of ``members`` (``{member path: bytes}``)."""
    if '\n' in description:
        raise CollisionGuardError('a program description is one line', [description])
    buffer = io.BytesIO()
    buffer.write(MANAGED_HEADER)
    buffer.write(('# %s\n' % description).encode('utf-8'))
    # Offsets in the archive count from the file's start, header included, as zipimport expects.
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_STORED) as archive:
        for member, content in sorted(members.items()):
            entry = zipfile.ZipInfo(member, ENTRY_TIME)
            entry.external_attr = ENTRY_MODE
            entry.compress_type = zipfile.ZIP_STORED
            archive.writestr(entry, content)
    return buffer.getvalue()
