# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._reserved_ports import (
    MANAGED_HEADER,
    configured_reservations,
    format_port_list,
    parse_managed_file,
    parse_port_list,
    plan_reservation,
    render_sysctl_file,
)


@pytest.mark.parametrize('text, ports', [
    ('', set()),
    ('\n', set()),
    ('8765', {8765}),
    ('5514,8765-8767,40000-40001\n', {5514, 8765, 8766, 8767, 40000, 40001}),
    (' 1, 65535 ', {1, 65535}),
])
def test_parse_port_list(text, ports):
    assert parse_port_list(text, 'here') == ports


@pytest.mark.parametrize('text, named', [
    ('80,abc', "'abc' is not a port or a range"),
    ('0', '0 in '),
    ('65536', 'out of range'),
    ('9000-8000', "'9000-8000' is a range that ends before it starts"),
    ('1-2-3', "'1-2-3' is not a port"),
])
def test_parse_port_list_names_the_bad_item_and_where(text, named):
    with pytest.raises(CollisionGuardError) as error:
        parse_port_list(text, '/etc/sysctl.d/x.conf line 3')
    assert str(error.value).startswith('/etc/sysctl.d/x.conf line 3: ')
    assert named in str(error.value)


@pytest.mark.parametrize('ports, text', [
    (set(), ''),
    ({8765}, '8765'),
    ({8767, 8765, 8766, 5514, 40000}, '5514,8765-8767,40000'),
])
def test_format_port_list_is_the_kernels_format_and_round_trips(ports, text):
    assert format_port_list(ports) == text
    assert parse_port_list(text, 'x') == ports


def test_configured_reservations_reads_every_spelling_and_skips_the_rest():
    text = '\n'.join([
        '# net.ipv4.ip_local_reserved_ports = 1',
        '; net.ipv4.ip_local_reserved_ports = 2',
        'net.ipv4.ip_local_port_range = 32768 60999',
        'net.ipv4.ip_local_reserved_ports = 3000-3001',
        'net/ipv4/ip_local_reserved_ports=4000',
        '-net.ipv4.ip_local_reserved_ports = 5000',
        'net.ipv4.ip_local_reserved_ports = 70000',
    ])
    ports, problems = configured_reservations(text, '/etc/sysctl.d/50-other.conf')
    assert ports == {3000, 3001, 4000, 5000}
    assert problems == ["/etc/sysctl.d/50-other.conf line 7: 70000 in '70000' is out of range 1-65535"]


def test_plan_keeps_others_and_adds_only_what_they_lack():
    value, added = plan_reservation(live={8766, 40000}, configured_elsewhere=set(), previously_added=set(),
                                    wanted={8765, 8766, 5514})
    assert value == {5514, 8765, 8766, 40000}
    # 8766 was reserved by someone else first: it is theirs, and stays when the collection leaves.
    assert added == {5514, 8765}


def test_plan_is_stable_on_the_second_run():
    first_value, first_added = plan_reservation({8766, 40000}, set(), set(), {8765, 8766})
    value, added = plan_reservation(first_value, set(), first_added, {8765, 8766})
    assert (value, added) == (first_value, first_added)


def test_plan_releases_only_its_own_ports():
    # 8765 left the registry; 40000 and 41000 are others', 41000 reserved after the last run.
    value, added = plan_reservation({8765, 8766, 40000, 41000}, set(), {8765, 8766}, {8766})
    assert (value, added) == ({8766, 40000, 41000}, {8766})
    assert plan_reservation({8765, 8766, 40000}, set(), {8765, 8766}, set()) == ({40000}, set())


def test_plan_keeps_what_other_sysctl_files_ask_for_although_not_in_force():
    value, added = plan_reservation({8765}, {3000}, {8765}, {8765})
    assert (value, added) == ({3000, 8765}, {8765})


def test_rendered_file_holds_the_whole_value_and_reads_back():
    content = render_sysctl_file({5514, 8765, 8766, 40000}, {5514, 8765})
    assert content.splitlines()[0] == MANAGED_HEADER
    assert content.endswith('\nnet.ipv4.ip_local_reserved_ports = 5514,8765-8766,40000\n')
    assert parse_managed_file(content, 'f') == {5514, 8765}
    ports, problems = configured_reservations(content, 'f')
    assert (ports, problems) == ({5514, 8765, 8766, 40000}, [])


def test_rendered_file_with_nothing_added():
    content = render_sysctl_file({8766}, set())
    assert '# Added by qwf.collision_guard: none\n' in content
    assert parse_managed_file(content, 'f') == set()


@pytest.mark.parametrize('content', ['', 'net.ipv4.ip_local_reserved_ports = 8765\n', '# a comment\n' + MANAGED_HEADER])
def test_a_file_someone_else_wrote_is_refused(content):
    with pytest.raises(CollisionGuardError) as error:
        parse_managed_file(content, '/etc/sysctl.d/99-zz-collision-guard.conf')
    assert 'not written by qwf.collision_guard' in str(error.value)
    assert '/etc/sysctl.d/99-zz-collision-guard.conf' in str(error.value)


def test_the_reservation_plan_is_current_only_when_the_file_and_the_value_in_force_hold_it():
    from ansible_collections.qwf.collision_guard.plugins.module_utils._reserved_ports import (
        reservation_plan, render_sysctl_file)
    files = {'/proc/x': '8766\n', '/etc/sysctl.d/10-other.conf': 'net.ipv4.ip_local_reserved_ports = 9000\n'}

    def plan():
        return reservation_plan({8765}, '/etc/sysctl.d/99-zz.conf', files.get,
                                lambda pattern: [path for path in files if path.startswith('/etc/sysctl.d/')],
                                proc_path='/proc/x', globs=('/etc/sysctl.d/*.conf',))

    first = plan()
    assert first['value'] == {8765, 8766, 9000} and first['added'] == {8765} and not first['file_current']
    files['/etc/sysctl.d/99-zz.conf'] = first['file']
    files['/proc/x'] = '8765-8766,9000\n'
    again = plan()
    assert again['file_current'] and again['value'] == again['live']
    # Another file's reservation changes: the plan is no longer current.
    files['/etc/sysctl.d/10-other.conf'] = 'net.ipv4.ip_local_reserved_ports = 9001\n'
    assert not plan()['file_current']
    assert render_sysctl_file({1}, {1}) != files['/etc/sysctl.d/99-zz.conf']


def test_the_reservation_plan_refuses_an_unreadable_value_in_force():
    from ansible_collections.qwf.collision_guard.plugins.module_utils._reserved_ports import reservation_plan
    with pytest.raises(CollisionGuardError):
        reservation_plan({8765}, '/etc/x.conf', {}.get, lambda pattern: [], proc_path='/proc/x', globs=())
