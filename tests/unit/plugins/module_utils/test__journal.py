# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io

from ansible_collections.qwf.collision_guard.plugins.module_utils._journal import ERROR, WARNING, Journal


def test_the_journal_gets_priorities_only_when_stderr_is_the_journal():
    stream = io.StringIO()
    Journal('collision-guard-evict', stream, {'JOURNAL_STREAM': '8:1234'}).log(WARNING, 'x')
    Journal('collision-guard-evict', stream, {}).log(WARNING, 'y')
    assert stream.getvalue() == '<4>collision-guard-evict: x\ncollision-guard-evict: y\n'


def test_each_line_carries_the_identifier_and_is_kept():
    stream = io.StringIO()
    journal = Journal('collision-guard-check', stream, {'JOURNAL_STREAM': '8:1234'})
    journal.log(ERROR, 'cannot read the registry')
    assert stream.getvalue() == '<3>collision-guard-check: cannot read the registry\n'
    assert journal.lines == ['cannot read the registry']
