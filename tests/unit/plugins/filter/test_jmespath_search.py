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
    with pytest.raises(AnsibleFilterError, match="Invalid JMESPath expression .*severity=='critical'.*Incomplete expression"):
        jmespath_search(FINDINGS, "[?severity=='critical'")


try:
    from ansible.template import Templar, trust_as_template
except ImportError:  # ansible-core before 2.19 has no lazy values
    Templar = None

needs_lazy_values = pytest.mark.skipif(Templar is None, reason='lazy values came with ansible-core 2.19')

HOLDERS = [{'pid': 4242, 'unit': 'session-7.scope', 'cmdline': ['python3', '-m', 'http.server', '8766']}]
FLEET = [dict(FINDINGS[0], holders=[], port=8765), dict(FINDINGS[1], holders=HOLDERS, port=8766),
         dict(FINDINGS[2], holders=[], port=8765)]


def search_in_a_template(expression, variables=None):
    """What the filter returns when a playbook calls it on a variable: ansible-core 2.19 passes lazy values."""
    seen = []

    def search(data, expression):
        seen.append(type(data).__name__)
        return jmespath_search(data, expression)

    templar = Templar(variables=dict(variables or {}, findings=FLEET, expression=expression, search=search))
    result = templar.template(trust_as_template('{{ search(findings, expression) }}'))
    assert seen == ['_AnsibleLazyTemplateList']
    return result


@needs_lazy_values
@pytest.mark.parametrize('expression, expected', [
    ('length(@)', 3),
    ('[?length(holders) > `0`].host', ['web-2']),
    ('[?length(service) > `18`].service', ['sms-webhook.service', 'sms-webhook.service']),
    ('max_by(@, &port).port', 8766),
    ("[?contains(service, 'webhook')].host", ['web-1', 'web-2']),
    ("[?host=='web-2'].holders[].cmdline[] | join(' ', @)", 'python3 -m http.server 8766'),
    ("[?severity=='critical'] | [0].holders[0].cmdline[-1]", '8766'),
    ('keys(@[0]) | sort(@)', ['holders', 'host', 'port', 'service', 'severity']),
])
def test_functions_work_on_ansible_2_19_lazy_values(expression, expected):
    """json_query handles lazy values; this filter must too. Before the fix, every function failed on them."""
    assert search_in_a_template(expression) == expected


@needs_lazy_values
def test_tagged_strings_and_numbers_are_plain_to_jmespath():
    tagged = trust_as_template('sms-webhook.service')
    assert tagged.__class__ is not str
    assert jmespath_search([{'service': tagged}], 'length([0].service)') == 19
    assert jmespath_search({'a': [1, 2.5, True, None]}, 'max(a[:2])') == 2.5


@pytest.mark.parametrize('expression', ["[?severity=='critical'", '[?', '', 'length(', "[?severity=='critical']]"])
def test_an_invalid_expression_is_named_as_invalid(expression):
    with pytest.raises(AnsibleFilterError) as caught:
        jmespath_search(FINDINGS, expression)
    assert str(caught.value).startswith('Invalid JMESPath expression %r: ' % expression)


def test_an_expression_that_is_not_a_string_is_invalid():
    with pytest.raises(AnsibleFilterError, match=r'^Invalid JMESPath expression None: not a string'):
        jmespath_search(FINDINGS, None)


def test_a_valid_expression_that_cannot_be_applied_says_so():
    with pytest.raises(AnsibleFilterError, match=r"^Cannot evaluate the JMESPath expression 'length\(@\[0\]\.port\)': "):
        jmespath_search([{'port': 8765}], 'length(@[0].port)')
