# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import (
    dropin_path,
    is_managed,
    plan_port_cleanup,
    render_port_cleanup,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import validate_registry

REGISTRY = validate_registry([
    {'port': 8765, 'service': 'sms-webhook', 'notes': 'ExecStartPre=/bin/evil'},
    {'port': 5514, 'service': 'sms-webhook', 'protocol': 'udp'},
    {'port': 8766, 'service': 'status-api'},
    {'port': 9100, 'service': 'billing-worker'},
])

EXPECTED_SMS = """\
# Managed by qwf.collision_guard. Local edits are overwritten.
# Frees the registered ports of sms-webhook.service before every start.

[Service]
ExecStartPre=-+fuser --kill --namespace tcp 8765
ExecStartPre=-+fuser --kill --namespace udp 5514
"""


def test_render_lists_every_port_of_the_unit_and_no_notes():
    content = render_port_cleanup('sms-webhook.service', REGISTRY)
    assert content == EXPECTED_SMS
    assert is_managed(content)
    assert 'evil' not in content


def test_render_is_stable_whatever_the_registry_order():
    assert render_port_cleanup('sms-webhook.service', list(reversed(REGISTRY))) == EXPECTED_SMS


def test_render_refuses_unknown_method_and_unknown_unit():
    with pytest.raises(CollisionGuardError, match="unknown cleanup method 'kill-all'"):
        render_port_cleanup('sms-webhook.service', REGISTRY, method='kill-all')
    with pytest.raises(CollisionGuardError, match='no registry entry'):
        render_port_cleanup('nope.service', REGISTRY)


def test_plan_splits_present_and_absent_units():
    dropins, absent = plan_port_cleanup(REGISTRY, {'sms-webhook.service', 'status-api.service', 'unrelated.service'})
    assert sorted(dropins) == [
        '/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf',
        '/etc/systemd/system/status-api.service.d/port-cleanup.conf',
    ]
    assert dropins['/etc/systemd/system/sms-webhook.service.d/port-cleanup.conf'] == {
        'unit': 'sms-webhook.service', 'content': EXPECTED_SMS}
    assert [entry['service'] for entry in absent] == ['billing-worker.service']


def test_plan_with_no_units_present():
    dropins, absent = plan_port_cleanup(REGISTRY, set())
    assert dropins == {}
    assert len(absent) == len(REGISTRY)


def test_dropin_path_honours_unit_dir():
    assert dropin_path('a@1.service', unit_dir='/tmp/units') == '/tmp/units/a@1.service.d/port-cleanup.conf'


def test_foreign_files_are_not_managed():
    assert not is_managed('[Service]\nExecStartPre=/bin/true\n')
