# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._systemctl import ask_systemd


class FakeModule(object):
    """What ask_systemd uses of AnsibleModule, answering every command with one result."""

    def __init__(self, rc=0, out='', err=''):
        self.result = (rc, out, err)
        self.calls = []

    def get_bin_path(self, name, required=False):
        return '/usr/bin/' + name

    def run_command(self, argv):
        self.calls.append(argv)
        return self.result

    def fail_json(self, msg):
        raise SystemExit(msg)


def test_ask_systemd_runs_the_hosts_systemctl_and_returns_its_stdout():
    module = FakeModule(out='systemd 252 (252.30-1~deb12u2)\n')
    assert ask_systemd(module, ['systemctl', '--version'], 'its version') == 'systemd 252 (252.30-1~deb12u2)\n'
    assert module.calls == [['/usr/bin/systemctl', '--version']]


def test_ask_systemd_fails_the_module_saying_what_it_asked():
    module = FakeModule(rc=1, err='Failed to connect to bus\n')
    with pytest.raises(SystemExit, match='^Cannot ask systemd for its socket units: /usr/bin/systemctl list-sockets '
                                         'exited 1: Failed to connect to bus$'):
        ask_systemd(module, ['systemctl', 'list-sockets'], 'for its socket units')
