# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.qwf.collision_guard.plugins.filter.jmespath_search import jmespath_search

FINDINGS = [
    {'host': 'web-1', 'service': 'sms-webhook.service', 'severity': 'warning'},
    {'host': 'web-2', 'service': 'status-api.service', 'severity': 'critical'},
    {'host': 'web-2', 'service': 'sms-webhook.service', 'severity': 'ok'},
]


@pytest.mark.parametrize('expression, hosts', [
    ("[?severity=='critical']", ['web-2']),
    ("[?severity=='warning' && service=='sms-webhook.service']", ['web-1']),
    ("[?severity!='ok']", ['web-1', 'web-2']),
    ("[?severity=='unknown']", []),
])
def test_the_check_expressions(expression, hosts):
    assert [item['host'] for item in jmespath_search(FINDINGS, expression)] == hosts


def test_a_bad_expression_is_named():
    with pytest.raises(AnsibleFilterError, match='Cannot evaluate the JMESPath expression .*Incomplete expression'):
        jmespath_search(FINDINGS, "[?severity=='critical'")
