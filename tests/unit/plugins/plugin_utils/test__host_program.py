# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host programs as one file: what goes into the archive, and that its bytes depend on the sources alone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._imports import (
    PACKAGE,
    imported_modules,
    missing_modules,
    module_member,
)
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import (
    MANAGED_HEADER,
    build_program,
    program_bytes,
    program_members,
    read_module_utils,
)
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._probe import probe_holds, sha1_of_text

MAIN = b'from ansible_collections.qwf.collision_guard.plugins.module_utils._a import value\nprint(value)\n'
SOURCES = {
    '_a': b'from ansible_collections.qwf.collision_guard.plugins.module_utils import _b\nvalue = _b.VALUE\n',
    '_b': b'from ansible_collections.qwf.collision_guard.plugins.module_utils._c import VALUE\n',
    '_c': b'VALUE = "from the archive"\n',
    '_unused': b'raise SystemExit("never imported")\n',
}


def read_member(name):
    return SOURCES.get(name)


def test_every_import_form_is_followed():
    source = ('import %s._x\nfrom %s import _y, _z\nfrom %s._w.inner import thing\nimport os\nfrom json import dumps\n'
              % (PACKAGE, PACKAGE, PACKAGE))
    assert imported_modules(source) == ['_w', '_x', '_y', '_z']


def test_the_archive_holds_the_modules_imported_transitively_and_no_other():
    members = program_members(MAIN, read_member)
    assert sorted(members) == sorted(
        ['__main__.py'] + ['%s/__init__.py' % '/'.join(PACKAGE.split('.')[:depth]) for depth in range(1, 6)]
        + [module_member(name) for name in ('_a', '_b', '_c')])


def test_a_missing_module_is_refused_by_name():
    with pytest.raises(CollisionGuardError) as raised:
        program_members(MAIN, lambda name: None if name == '_c' else SOURCES.get(name))
    assert raised.value.problems == ['_c.py']
    assert missing_modules(MAIN, lambda name: None if name == '_b' else SOURCES.get(name)) == (['_a'], ['_b'])


def test_the_bytes_depend_on_the_sources_alone():
    first = build_program(MAIN, read_member, 'a program')
    assert build_program(MAIN, read_member, 'a program') == first
    changed = dict(SOURCES, _c=b'VALUE = "changed"\n')
    assert build_program(MAIN, changed.get, 'a program') != first
    assert first.startswith(MANAGED_HEADER + b'# a program\n')
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {entry.date_time for entry in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {entry.compress_type for entry in archive.infolist()} == {zipfile.ZIP_STORED}


def test_a_description_of_two_lines_is_refused():
    with pytest.raises(CollisionGuardError):
        program_bytes({'__main__.py': b''}, 'one\ntwo')


def test_python_runs_the_program_from_its_archive_in_isolated_mode(tmp_path):
    program = tmp_path / 'program'
    program.write_bytes(build_program(MAIN, read_member, 'a program'))
    result = subprocess.run([sys.executable, '-I', str(program)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, cwd='/', check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, 'from the archive\n', '')


def test_the_real_programs_build_from_the_collections_module_utils():
    root = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..')
    for program, needed, not_needed in (('collision-guard-evict', '_eviction', '_monitor'),
                                        ('collision-guard-check', '_monitor', '_collision_map')):
        with open(os.path.join(root, 'roles', 'harden', 'files', program), 'rb') as handle:
            members = program_members(handle.read(), read_module_utils())
        assert module_member(needed) in members and module_member(not_needed) not in members


@pytest.mark.parametrize('probe, expected', [
    ({'type': 'file', 'sha1': sha1_of_text('text'), 'mode': '0644', 'uid': 0, 'gid': 0}, True),
    ({'type': 'file', 'sha1': sha1_of_text('other'), 'mode': '0644', 'uid': 0, 'gid': 0}, False),
    ({'type': 'file', 'sha1': sha1_of_text('text'), 'mode': '0666', 'uid': 0, 'gid': 0}, False),
    ({'type': 'file', 'sha1': sha1_of_text('text'), 'mode': '0644', 'uid': 1000, 'gid': 0}, False),
    ({'type': 'link', 'sha1': None, 'mode': '0777', 'uid': 0, 'gid': 0}, False),
    ({'exists': False, 'path': '/x'}, False),
    ({}, False),
    (None, False),
])
def test_a_probe_holds_the_content_only_as_a_root_file_with_those_bytes_and_mode(probe, expected):
    assert probe_holds(probe, sha1_of_text('text'), '0644') is expected
