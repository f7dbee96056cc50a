# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import (
    daemon_reload_due,
    parse_unit_properties,
    present_units,
    show_command,
    unit_from_cgroup,
)

UNITS = ['sms-webhook.service', 'billing-worker.service', 'sshd.service', 'old.service']


def test_properties_are_matched_by_order_so_aliases_work(fixture_text):
    properties = parse_unit_properties(fixture_text('systemctl_show_states.txt'), UNITS)
    assert [properties[unit]['LoadState'] for unit in UNITS] == ['loaded', 'not-found', 'loaded', 'masked']
    assert properties['sshd.service']['Id'] == 'ssh.service'
    assert present_units(properties) == {'sms-webhook.service', 'sshd.service', 'old.service'}
    assert daemon_reload_due(properties) == ['sshd.service']


def test_block_count_mismatch_is_an_error(fixture_text):
    with pytest.raises(CollisionGuardError, match='4 blocks for 2 units'):
        parse_unit_properties(fixture_text('systemctl_show_states.txt'), UNITS[:2])


def test_show_command_ends_options_before_unit_names():
    assert show_command(['-x.service']) == [
        'systemctl', 'show', '--property=Id,LoadState,ActiveState,NeedDaemonReload', '--', '-x.service']


@pytest.mark.parametrize('fixture, unit', [
    ('cgroup_v1_hybrid_container.txt', 'sms-webhook.service'),
    ('cgroup_v2_host_session.txt', 'session-3.scope'),
    ('cgroup_v2_delegated.txt', 'app.service'),
    ('cgroup_v2_docker_scope.txt', 'docker-4f1c2a9e.scope'),
    ('cgroup_v2_kernel_thread.txt', None),
])
def test_unit_from_cgroup(fixture_text, fixture, unit):
    assert unit_from_cgroup(fixture_text(fixture)) == unit


def test_unit_from_cgroup_ignores_garbage():
    assert unit_from_cgroup('') is None
    assert unit_from_cgroup('not a cgroup line\n') is None
