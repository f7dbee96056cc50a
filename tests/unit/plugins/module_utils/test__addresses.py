# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._addresses import (
    endpoint,
    entries_collide,
    entry_collides,
    family_of,
    normalise_address,
)


def sock(address, dual_stack=None, family=None):
    """A listener as _sockets reads it: only the keys entry_collides looks at."""
    family = family or family_of(address)
    return {'family': family, 'address': address, 'dual_stack': dual_stack if family == 'ipv6' else False}


# (entry address, socket, collides): an entry against a socket the host shows.
ENTRY_VS_SOCKET = [
    (None, sock('127.0.0.1'), True),
    (None, sock('::1'), True),
    (None, sock('::', dual_stack=False), True),
    ('0.0.0.0', sock('127.0.0.1'), True),
    ('127.0.0.1', sock('0.0.0.0'), True),
    ('127.0.0.1', sock('127.0.0.1'), True),
    ('127.0.0.2', sock('127.0.0.53'), False),
    ('127.0.0.53', sock('127.0.0.2'), False),
    ('127.0.0.1', sock('::', dual_stack=True), True),
    # /proc/net cannot tell IPV6_V6ONLY: an unknown "::" is taken to take IPv4 too.
    ('127.0.0.1', sock('::', dual_stack=None), True),
    ('127.0.0.1', sock('::', dual_stack=False), False),
    ('0.0.0.0', sock('::', dual_stack=False), False),
    ('0.0.0.0', sock('::', dual_stack=True), True),
    # An entry cannot say V6ONLY, so "::" claims IPv4 as well.
    ('::', sock('127.0.0.1'), True),
    ('::', sock('::1'), True),
    ('::1', sock('127.0.0.1'), False),
    ('::1', sock('::1'), True),
    ('::1', sock('::2'), False),
    ('::1', sock('0.0.0.0'), False),
    ('::ffff:127.0.0.2', sock('127.0.0.2'), True),
    ('127.0.0.2', sock('::ffff:127.0.0.2'), True),
    # Python before 3.13 writes an IPv4-mapped address in hex.
    ('::ffff:7f00:2', sock('127.0.0.2'), True),
    ('::ffff:127.0.0.2', sock('127.0.0.3'), False),
    ('::ffff:127.0.0.2', sock('0.0.0.0'), True),
    ('2001:db8::1', sock('2001:DB8:0::1'), True),
]


@pytest.mark.parametrize('entry, socket, collides', ENTRY_VS_SOCKET,
                         ids=['%s-%s/%s' % (entry, socket['address'], socket['dual_stack'])
                              for entry, socket, dummy in ENTRY_VS_SOCKET])
def test_entry_collides(entry, socket, collides):
    assert entry_collides(entry, socket) is collides


# (first entry address, second entry address, collide): two registry entries on one port and protocol.
ENTRY_VS_ENTRY = [
    (None, None, True),
    (None, '127.0.0.1', True),
    ('::1', None, True),
    ('0.0.0.0', '127.0.0.1', True),
    ('127.0.0.2', '127.0.0.53', False),
    ('127.0.0.1', '127.0.0.1', True),
    ('::', '127.0.0.1', True),
    ('::', '0.0.0.0', True),
    ('::', '::1', True),
    ('::1', '127.0.0.1', False),
    ('0.0.0.0', '::1', False),
    ('::1', '::0001', True),
    ('::ffff:127.0.0.2', '127.0.0.2', True),
    ('::ffff:127.0.0.2', '::ffff:7f00:2', True),
    ('::ffff:127.0.0.2', '127.0.0.53', False),
    ('::ffff:127.0.0.2', '::1', False),
]


@pytest.mark.parametrize('first, second, collide', ENTRY_VS_ENTRY, ids=['%s-%s' % item[:2] for item in ENTRY_VS_ENTRY])
def test_entries_collide_both_ways(first, second, collide):
    assert entries_collide(first, second) is collide
    assert entries_collide(second, first) is collide


@pytest.mark.parametrize('address, port, text', [
    (None, 8765, '8765'),
    ('127.0.0.2', 53, '127.0.0.2:53'),
    ('::1', 53, '[::1]:53'),
    ('::', 80, '[::]:80'),
    ('0.0.0.0', 80, '0.0.0.0:80'),
    ('::ffff:127.0.0.2', 53, '[::ffff:127.0.0.2]:53'),
])
def test_endpoint(address, port, text):
    assert endpoint(address, port) == text


@pytest.mark.parametrize('value, canonical', [
    ('127.0.0.1', '127.0.0.1'),
    ('::0001', '::1'),
    ('[::1]', '::1'),
    ('2001:DB8::0:1', '2001:db8::1'),
    ('::ffff:7f00:2', '::ffff:127.0.0.2'),
    ('::ffff:127.0.0.2', '::ffff:127.0.0.2'),
])
def test_normalise_address(value, canonical):
    assert normalise_address(value) == (canonical, None)
    assert normalise_address(canonical) == (canonical, None)


@pytest.mark.parametrize('value', ['localhost', '1.2.3.4.5', '::1%eth0', ' 1.2.3.4', '1.2.3.4\n', 42, None, True, '',
                                   '[1.2.3.4]', '[::1', '::1]', '[]', '[[::1]]', b'127.0.0.1', '10.0.0.0/8'])
def test_normalise_address_refuses(value):
    assert normalise_address(value) == (None, 'is not an IPv4 or IPv6 address')


@pytest.mark.parametrize('address, family', [('127.0.0.1', 'ipv4'), ('::1', 'ipv6'), ('::ffff:127.0.0.2', 'ipv6')])
def test_family_of(address, family):
    assert family_of(address) == family
