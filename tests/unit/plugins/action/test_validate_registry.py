# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.action.validate_registry import hosts_with_another_registry

FLEET = [{'port': 8765, 'service': 'sms-webhook'}]
OTHER = [{'port': 8765, 'service': 'sms-gateway'}]


def task_vars(registries, me='web1'):
    return {
        'inventory_hostname': me,
        'ansible_play_hosts_all': sorted(registries),
        'hostvars': dict((host, {} if registry is None else {'collision_guard_registry': registry})
                         for host, registry in registries.items()),
    }


@pytest.mark.parametrize('registries, differing', [
    ({'web1': FLEET, 'web2': FLEET, 'db1': FLEET}, []),
    ({'web1': FLEET, 'web2': FLEET, 'db1': OTHER}, ['db1']),
    ({'web1': FLEET, 'web2': None}, ['web2']),
    # From role parameters or defaults only: nothing in inventory to compare.
    ({'web1': None, 'web2': None}, []),
], ids=['same', 'one-differs', 'one-lacks-it', 'not-in-inventory'])
def test_hosts_with_another_registry(registries, differing):
    assert hosts_with_another_registry(task_vars(registries), 'collision_guard_registry') == differing


def test_free_text_source_skips_the_comparison():
    assert hosts_with_another_registry(task_vars({'web1': FLEET, 'db1': OTHER}), 'group_vars/all registry') == []
