# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import (
    VIEW_PROPERTIES,
    attribute_socket_units,
    cgroup_path,
    container_from_cgroup,
    is_packaged,
    list_units_command,
    manager_from_cgroup,
    parse_list_units,
    parse_unit_properties,
    restart_setting,
    show_command,
    socket_units_by_port,
    strip_cgroup_root,
    unit_from_cgroup,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import glob_matches

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')

UNITS = ['sms-webhook.service', 'billing-worker.service', 'sshd.service', 'old.service']


def test_properties_are_matched_by_order_so_aliases_work(fixture_text):
    properties = parse_unit_properties(fixture_text('systemctl_show_states.txt'), UNITS)
    assert [properties[unit]['LoadState'] for unit in UNITS] == ['loaded', 'not-found', 'loaded', 'masked']
    assert properties['sshd.service']['Id'] == 'ssh.service'


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


@pytest.mark.parametrize('path, unit, manager', [
    # A delegated subtree cannot pass for another unit: the outermost unit is the one, as systemd says.
    ('/system.slice/ci-runner.service/sms-webhook.socket', 'ci-runner.service', None),
    ('/system.slice/ci-runner.service/system.slice/ssh.service', 'ci-runner.service', None),
    ('/machine.slice/systemd-nspawn@web.service/payload/system.slice/nginx.service', 'systemd-nspawn@web.service', None),
    # systemd escapes names that start with "_" or a controller's name.
    ('/system.slice/__relay.service', '_relay.service', None),
    ('/system.slice/_io.metrics.service', 'io.metrics.service', None),
    # A user's own service manager, and a unit it runs.
    ('/user.slice/user-1000.slice/user@1000.service/init.scope', 'init.scope', 'user@1000.service'),
    ('/user.slice/user-1000.slice/user@1000.service/app.slice/billing-worker.service', 'billing-worker.service',
     'user@1000.service'),
    ('/user.slice/user-1000.slice/session-4.scope', 'session-4.scope', None),
    # A user's unit delegates its subtree to the user, who may name cgroups there as she likes.
    ('/user.slice/user-1500.slice/user@1500.service/app.slice/evil.service/init.scope', 'evil.service',
     'user@1500.service'),
    ('/user.slice/user-1500.slice/user@1500.service/app.slice/evil.service/user@0.service/sshd.service', 'evil.service',
     'user@1500.service'),
], ids=['delegated-socket-name', 'delegated-service-name', 'nested-container', 'escaped-underscore',
        'escaped-controller-prefix', 'user-manager-itself', 'user-unit', 'login-session', 'user-named-init-scope',
        'user-named-another-manager'])
def test_the_unit_is_the_outermost_as_systemd_says(path, unit, manager):
    assert (unit_from_cgroup(path), manager_from_cgroup(path)) == (unit, manager)


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
        {'pid': 1, 'protocol': 'tcp', 'address': '::', 'port': 22, 'unit': 'init.scope'},
        {'pid': 1, 'protocol': 'tcp', 'address': '0.0.0.0', 'port': 4444, 'unit': 'init.scope'},
        {'pid': 700, 'protocol': 'tcp', 'address': '::', 'port': 22, 'unit': 'sshd.service'},
    ]
    attribute_socket_units(listeners, fixture_text('systemctl_list_sockets.txt'))
    assert [item['unit'] for item in listeners] == ['ssh.socket', 'init.scope', 'sshd.service']


def test_socket_units_sharing_a_port_are_told_apart_by_address(fixture_text):
    # a.socket on [::1]:9000 and b.socket on 127.0.0.1:9000, as list-sockets shows them.
    listeners = [{'pid': 1, 'protocol': 'tcp', 'address': '127.0.0.1', 'port': 9000, 'unit': 'init.scope'},
                 {'pid': 1, 'protocol': 'tcp', 'address': '::1', 'port': 9000, 'unit': 'init.scope'},
                 {'pid': 1, 'protocol': 'tcp', 'address': '127.0.0.9', 'port': 9000, 'unit': 'init.scope'}]
    attribute_socket_units(listeners, fixture_text('systemctl_list_sockets.txt'))
    assert [item['unit'] for item in listeners] == ['b.socket', 'a.socket', 'init.scope']


def test_show_command_asks_for_the_view_properties():
    argv = show_command(['postgresql@15-main.service'], VIEW_PROPERTIES)
    assert argv[:2] == ['systemctl', 'show'] and argv[-2:] == ['--', 'postgresql@15-main.service']
    asked = argv[2][len('--property='):].split(',')
    assert asked == list(VIEW_PROPERTIES)
    for needed in ('Id', 'LoadState', 'ConsistsOf', 'TriggeredBy', 'FragmentPath', 'DropInPaths', 'Type'):
        assert needed in asked


def test_list_units_command_ends_options_before_the_globs():
    assert list_units_command(['postgresql@*-main.service', '-x*.service']) == [
        'systemctl', 'list-units', '--all', '--full', '--plain', '--no-legend', '--no-pager', '--type=service', '--',
        'postgresql@*-main.service', '-x*.service']


def test_parse_list_units_reads_realistic_output():
    # Read as UTF-8 whatever the locale: older systemd prints a bullet before a failed or missing unit.
    with io.open(os.path.join(FIXTURES, 'systemctl_list_units.txt'), encoding='utf-8') as handle:
        names = parse_list_units(handle.read())
    assert names == ['postgresql@15-main.service', 'postgresql@16-main.service', 'postgresql@16-replica.service',
                     'postgresql@14-main.service', 'postgresql@13-main.service']
    assert [name for name in names if glob_matches('postgresql@*-main.service', name)] == [
        'postgresql@15-main.service', 'postgresql@16-main.service', 'postgresql@14-main.service',
        'postgresql@13-main.service']


@pytest.mark.parametrize('output', ['', '\n\n', '  \n'])
def test_parse_list_units_of_nothing(output):
    assert parse_list_units(output) == []


RESTART_CASES = [
    pytest.param([], '', id='no-files'),
    pytest.param(['[Service]\nExecStart=/bin/true\n'], '', id='unset'),
    pytest.param(['[Service]\nRestart=on-failure\n'], 'on-failure', id='unit-file'),
    pytest.param(['[Service]\nRestart=on-failure\n', '[Service]\nRestart=always\n'], 'always', id='drop-in-wins'),
    pytest.param(['[Service]\nRestart=always\n', '[Service]\nRestart=no\n', '[Service]\nRestart=on-abort\n'],
                 'on-abort', id='last-drop-in-wins'),
    pytest.param(['[Service]\nRestart=always\nRestart=on-failure\n'], 'on-failure', id='later-line-wins'),
    pytest.param(['[Service]\nRestart=always\n', '[Service]\nRestart=\n'], '', id='empty-resets'),
    pytest.param(['[Service]\nRestart=always\n', '[Service]\nRestart=\n', '[Service]\nRestart=no\n'], 'no',
                 id='set-after-reset'),
    pytest.param(['[Unit]\nRestart=always\n[Install]\nRestart=always\n'], '', id='other-sections-ignored'),
    pytest.param(['Restart=always\n[Service]\nType=simple\n'], '', id='before-any-section'),
    pytest.param(['[Unit]\nDescription=x\n[Service]\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n',
                  '[Unit]\nRestart=always\n'], 'on-failure', id='drop-in-other-section'),
    pytest.param(['[Service]\n# Restart=always\n; Restart=always\nRestart=on-failure\n'], 'on-failure',
                 id='comments'),
    pytest.param(['[Service]\n  Restart = always  \n'], 'always', id='blanks-around-equals'),
    pytest.param(['[Service]\nRestartSec=5\nRestartPreventExitStatus=1\n'], '', id='similar-keys'),
    pytest.param(['[Service]\nRestart=on-failure\n', '[Service]\nRestart=always # no inline comments\n'],
                 'on-failure', id='unparsable-value-ignored'),
    pytest.param(['[Service]\r\nRestart=always\r\n'], 'always', id='crlf'),
]


@pytest.mark.parametrize('texts, restart', RESTART_CASES)
def test_restart_setting(texts, restart):
    assert restart_setting(texts) == restart


@pytest.mark.parametrize('path, manager', [
    ('/user.slice/user-1000.slice/user@1000.service/app.slice/billing-worker.service', 'user@1000.service'),
    ('/user.slice/user-1000.slice/user@1000.service/init.scope', 'user@1000.service'),
    ('/user.slice/user-0.slice/user@0.service/app.slice/sshd.service', 'user@0.service'),
    # The manager itself is a system unit.
    ('/user.slice/user-1000.slice/user@1000.service', None),
    ('/system.slice/billing-worker.service', None),
    ('/system.slice/app.service/payload/worker-1', None),
    ('/user.slice/user-1000.slice/session-3.scope', None),
    ('/init.scope', None),
    ('', None),
    ('/', None),
], ids=['user-service', 'user-manager-init', 'root-manager', 'manager-itself', 'system-service', 'delegated',
        'session', 'pid-1', 'empty', 'root'])
def test_manager_from_cgroup(path, manager):
    assert manager_from_cgroup(path) == manager


def test_a_user_unit_named_like_a_system_unit_is_the_users():
    path = '/user.slice/user-1000.slice/user@1000.service/app.slice/sshd.service'
    assert (unit_from_cgroup(path), manager_from_cgroup(path)) == ('sshd.service', 'user@1000.service')


@pytest.mark.parametrize('fragment, packaged', [
    ('/lib/systemd/system/postgresql@.service', True),
    ('/usr/lib/systemd/system/nginx.service', True),
    ('/run/systemd/generator/cups.service', True),
    ('/run/systemd/generator.late/dnsmasq.service', True),
    ('/etc/systemd/system/sms-webhook.service', False),
    ('/usr/local/lib/systemd/system/agent.service', False),
    ('/run/systemd/transient/run-u42.service', False),
    ('/etc/systemd/system/lib/systemd/system/x.service', False),
    ('/libx/systemd/system/x.service', False),
    ('', False),
    (None, False),
])
def test_is_packaged(fragment, packaged):
    assert is_packaged(fragment) is packaged
