# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.modules import blockinfile
from ansible.module_utils.testing import patch_module_args

from ansible_collections.qwf.collision_guard.plugins.module_utils._managed_block import (
    DEFAULT_MARKER,
    marker_lines,
    marker_problem,
    with_block,
)

BEGIN = b'<!-- BEGIN qwf.collision_guard port registry -->\n'
END = b'<!-- END qwf.collision_guard port registry -->\n'
TABLE = u'| port | service |\n|---|---|\n| 8765 | sms-webhook.service |'

# (content before, block, present): files as people and earlier runs leave them.
CASES = [
    (None, TABLE, True),
    (b'', TABLE, True),
    (b'# Project\n', TABLE, True),
    (b'# Project', TABLE, True),
    (b'# Project\n\n' + BEGIN + b'| old |\n' + END, TABLE, True),
    (b'# Project\n' + BEGIN + b'| old |\n' + END + b'\nMore text.\n', TABLE, True),
    (b'# Project\n' + END + b'| swapped |\n' + BEGIN + b'tail\n', TABLE, True),
    (b'# Project\n' + BEGIN + b'| only a begin |\n', TABLE, True),
    (b'# Project\n' + BEGIN + b'| old |\n' + END, TABLE + u'\n', True),
    (b'# Project\r\n' + BEGIN + b'| old |\n' + END, TABLE, True),
    (b'# Project\n' + BEGIN + b'| old |\n' + END + b'tail\n', u'', True),
    (b'# Project\n' + BEGIN + b'| old |\n' + END + b'tail\n', TABLE, False),
    (b'# Project\n', TABLE, False),
    (u'# Caf\u00e9\n'.encode('utf-8'), u'| caf\u00e9 |', True),
]


def blockinfile_result(tmp_path, capsys, content, block, present):
    path = tmp_path / 'AGENTS.md'
    if path.exists():
        path.unlink()
    if content is not None:
        path.write_bytes(content)
    args = {'path': str(path), 'block': block, 'marker': DEFAULT_MARKER, 'create': True,
            'state': 'present' if present else 'absent'}
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            blockinfile.main()
    json.loads(capsys.readouterr().out)
    return path.read_bytes() if path.exists() else None


@pytest.mark.parametrize('content, block, present', CASES)
def test_same_bytes_as_blockinfile(tmp_path, capsys, content, block, present):
    expected = blockinfile_result(tmp_path, capsys, content, block, present)
    assert with_block(content, block, DEFAULT_MARKER, present) == (expected or b'')


def test_absent_leaves_a_file_without_the_block_as_it_is():
    # blockinfile adds a newline to such a file; a removal that finds nothing changes nothing.
    assert with_block(b'no newline', TABLE, DEFAULT_MARKER, False) == b'no newline'


def test_the_block_is_replaced_where_it_is():
    before = b'# Project\n' + BEGIN + b'| old |\n' + END + b'tail\n'
    assert with_block(before, u'| new |', DEFAULT_MARKER) == b'# Project\n' + BEGIN + b'| new |\n' + END + b'tail\n'


def test_marker_lines():
    assert marker_lines(DEFAULT_MARKER) == (BEGIN, END)


@pytest.mark.parametrize('marker, problem', [
    (DEFAULT_MARKER, None),
    ('# {mark} ports', None),
    ('# ports', "marker: '# ports' has no {mark}"),
    ('# {mark}\nports', "marker: '# {mark}\\nports' is not one line"),
    ('# {mark}\r', "marker: '# {mark}\\r' is not one line"),
])
def test_marker_problem(marker, problem):
    assert marker_problem(marker) == problem
