# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The host programs, run the way the drop-in and the monitor's unit run them.

Each program is built as the managed_files action builds it, one zip
application, then broken the ways a host breaks it: a module missing from
the archive or damaged in it, the helper or the interpreter missing. A
broken guard never blocks a start.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shlex
import socket
import subprocess
import sys

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import render_port_cleanup
from ansible_collections.qwf.collision_guard.plugins.module_utils._imports import module_member
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry
from ansible_collections.qwf.collision_guard.plugins.plugin_utils._host_program import (
    program_bytes,
    program_members,
    read_module_utils,
)

ROOT = os.path.join(os.path.dirname(__file__), '..', '..', '..')
PROGRAMS = {'collision-guard-evict': 'the eviction helper', 'collision-guard-check': 'the ownership checker'}


def members_of(program):
    with open(os.path.join(ROOT, 'roles', 'harden', 'files', program), 'rb') as handle:
        return program_members(handle.read(), read_module_utils())


def install(helper_dir, program, members):
    (helper_dir / program).write_bytes(program_bytes(members, PROGRAMS[program]))


@pytest.fixture
def helper_dir(tmp_path):
    """A helper directory as roles/harden/tasks/helper.yml and monitor.yml install it: one file per program."""
    base = tmp_path / 'collision-guard'
    base.mkdir()
    for program in PROGRAMS:
        install(base, program, members_of(program))
    return base


def free_port():
    probe = socket.socket()
    probe.bind(('127.0.0.1', 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def exec_start_pre(helper_dir, port, python=sys.executable):
    """The drop-in's ExecStartPre as systemd runs it: split and unquoted, then "$$" made "$"."""
    registry = validate_registry([{'port': port, 'service': 'owner'}])
    content = render_port_cleanup('owner.service', registry, {'helper_dir': str(helper_dir), 'helper_python': python})
    line = [line for line in content.splitlines() if line.startswith('ExecStartPre=')][0]
    command = line[len('ExecStartPre='):]
    assert command.startswith('+')  # as root: nothing to emulate here
    return [word.replace('$$', '$') for word in shlex.split(command[1:])]


def run(argv):
    environment = dict(os.environ, JOURNAL_STREAM='8:1')
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          env=environment, check=False, timeout=60)


def test_an_intact_helper_on_a_free_port_says_nothing(helper_dir):
    result = run(exec_start_pre(helper_dir, free_port()))
    assert (result.returncode, result.stdout, result.stderr) == (0, '', '')


def test_a_program_is_one_file_that_runs_from_its_archive_alone(helper_dir):
    assert sorted(os.listdir(str(helper_dir))) == sorted(PROGRAMS)
    assert (helper_dir / 'collision-guard-evict').read_bytes().startswith(
        b'# Managed by qwf.collision_guard. Local edits are overwritten.\n')
    # Built twice, the same bytes: a rerun finds the same checksum and sends nothing.
    assert program_bytes(members_of('collision-guard-evict'), 'x') == program_bytes(members_of('collision-guard-evict'), 'x')


def test_a_missing_module_lets_the_start_go_on_with_a_warning_naming_it(helper_dir):
    members = members_of('collision-guard-evict')
    del members[module_member('_ownership')]
    install(helper_dir, 'collision-guard-evict', members)
    result = run(exec_start_pre(helper_dir, free_port()))
    assert result.returncode == 0
    assert result.stderr == (
        "<4>collision-guard-evict: cannot load its code from %s (ModuleNotFoundError: No module named "
        "'ansible_collections.qwf.collision_guard.plugins.module_utils._ownership'); the start goes on without "
        "freeing the port\n" % (helper_dir / 'collision-guard-evict'))


def test_a_damaged_module_lets_the_start_go_on_with_a_warning(helper_dir):
    members = members_of('collision-guard-evict')
    members[module_member('_journal')] = b'def broken(:\n'
    install(helper_dir, 'collision-guard-evict', members)
    result = run(exec_start_pre(helper_dir, free_port()))
    assert result.returncode == 0
    assert result.stderr.startswith('<4>collision-guard-evict: cannot load its code from %s (SyntaxError: ' % (
        helper_dir / 'collision-guard-evict'))
    assert result.stderr.count('\n') == 1


def test_a_missing_helper_lets_the_start_go_on_with_a_warning_naming_it(helper_dir):
    os.unlink(str(helper_dir / 'collision-guard-evict'))
    result = run(exec_start_pre(helper_dir, free_port()))
    assert result.returncode == 0
    assert result.stderr == ('<4>collision-guard-evict: %s/collision-guard-evict is missing; the start goes on '
                             'without freeing the port\n' % helper_dir)


def test_a_missing_interpreter_lets_the_start_go_on_with_a_warning_naming_it(helper_dir, tmp_path):
    missing = str(tmp_path / 'bin' / 'python3')
    result = run(exec_start_pre(helper_dir, free_port(), python=missing))
    assert result.returncode == 0
    assert result.stderr == ('<4>collision-guard-evict: its interpreter %s is missing; the start goes on without '
                             'freeing the port\n' % missing)


def test_the_helpers_own_refusals_still_fail_the_start(helper_dir):
    # A bad argument is one: here the port, as an old drop-in might give it.
    argv = exec_start_pre(helper_dir, free_port())
    result = run(argv[:-1] + ['70000/tcp'])
    assert result.returncode == 2
    assert result.stderr.startswith("<3>collision-guard-evict: bad port '70000/tcp'")


def test_the_monitor_without_its_modules_fails_with_one_clear_line(helper_dir):
    members = members_of('collision-guard-check')
    del members[module_member('_monitor')]
    install(helper_dir, 'collision-guard-check', members)
    result = run([sys.executable, '-I', str(helper_dir / 'collision-guard-check'), '--textfile-dir', str(helper_dir)])
    assert result.returncode == 1
    assert result.stderr == (
        "<3>collision-guard-check: cannot load its code from %s (ModuleNotFoundError: No module named "
        "'ansible_collections.qwf.collision_guard.plugins.module_utils._monitor'); no port was checked\n" % (
            helper_dir / 'collision-guard-check'))
