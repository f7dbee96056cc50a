# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import (
    attribute_socket_units,
    cgroup_path,
    container_from_cgroup,
    daemon_reload_due,
    parse_unit_properties,
    present_units,
    show_command,
    socket_units_by_port,
    strip_cgroup_root,
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
    assert unit_from_cgroup(cgroup_path(fixture_text(fixture))) == unit


def test_cgroup_path_prefers_the_systemd_hierarchy(fixture_text):
    assert cgroup_path(fixture_text('cgroup_v1_hybrid_container.txt')) == '/docker/4f1c2a/system.slice/sms-webhook.service'
    assert cgroup_path('0::/init.scope\n') == '/init.scope'
    assert cgroup_path('') == ''
    assert cgroup_path('not a cgroup line\n') == ''
    assert unit_from_cgroup('') is None


@pytest.mark.parametrize('path, root, stripped', [
    ('/docker/4f1c2a/system.slice/sms-webhook.service', '/docker/4f1c2a', '/system.slice/sms-webhook.service'),
    ('/docker/4f1c2a', '/docker/4f1c2a', '/'),
    ('/docker/4f1c2ab/system.slice/x.service', '/docker/4f1c2a', '/docker/4f1c2ab/system.slice/x.service'),
    ('/system.slice/x.service', '/', '/system.slice/x.service'),
    ('/system.slice/x.service', '', '/system.slice/x.service'),
], ids=['container', 'container-root', 'sibling-prefix', 'host', 'unknown'])
def test_strip_cgroup_root(path, root, stripped):
    assert strip_cgroup_root(path, root) == stripped


ID = 'a' * 64


@pytest.mark.parametrize('path, container', [
    ('/system.slice/docker-%s.scope' % ID, ID),
    ('/machine.slice/libpod-%s.scope/container' % ID, ID),
    ('/kubepods.slice/kubepods-pod1.slice/cri-containerd-%s.scope' % ID, ID),
    ('/kubepods.slice/crio-%s.scope' % ID, ID),
    ('/docker/%s/system.slice/sms-webhook.service' % ID, ID),
    ('/machine.slice/libpod-conmon-%s.scope' % ID, None),
    ('/system.slice/sms-webhook.service', None),
    ('/system.slice/docker.service', None),
], ids=['docker-systemd', 'podman', 'containerd', 'crio', 'docker-cgroupfs', 'conmon', 'plain-service', 'dockerd'])
def test_container_from_cgroup(path, container):
    assert container_from_cgroup(path) == container


def test_socket_units_by_port(fixture_text):
    assert socket_units_by_port(fixture_text('systemctl_list_sockets.txt')) == {
        ('tcp', 22): ['ssh.socket'],
        ('tcp', 8770): ['cg-socket-demo.socket'],
        ('udp', 5353): ['cg-dgram.socket'],
        ('tcp', 9000): ['a.socket', 'b.socket'],
    }


def test_attribute_socket_units_names_only_pid_1_sockets_with_one_candidate(fixture_text):
    listeners = [
        {'pid': 1, 'protocol': 'tcp', 'port': 22, 'unit': 'init.scope'},
        {'pid': 1, 'protocol': 'tcp', 'port': 4444, 'unit': 'init.scope'},
        {'pid': 700, 'protocol': 'tcp', 'port': 22, 'unit': 'sshd.service'},
    ]
    attribute_socket_units(listeners, fixture_text('systemctl_list_sockets.txt'))
    assert [item['unit'] for item in listeners] == ['ssh.socket', 'init.scope', 'sshd.service']
