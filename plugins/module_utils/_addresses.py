# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Whether two binds of one port collide, under Linux's rules.

A registry entry may name the address its service binds; without one it
claims the port on every address. Two sockets on one port collide when:

- either is a wildcard of the other's family (``0.0.0.0``, ``::``);
- one is ``::`` without IPV6_V6ONLY, which also takes every IPv4 address;
- both are the same specific address.

``127.0.0.53:53`` (systemd-resolved) and ``127.0.0.2:53`` (a dnsmasq with
bind-interfaces) therefore share port 53 without a collision.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

WILDCARDS = {'ipv4': '0.0.0.0', 'ipv6': '::'}


def _parse(text):
    """An ``ipaddress`` object for an IP literal, or None."""
    # Imported here: the eviction helper runs at every start, and most starts find the port free.
    import ipaddress
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def same_address(first, second):
    """Whether two IP literals name one address (``::0001`` is ``::1``); other text must be equal."""
    first_address, second_address = _parse(first), _parse(second)
    if first_address is None or second_address is None:
        return first == second
    return first_address == second_address


def _text(address):
    """The canonical text of an address object.

    An IPv4-mapped IPv6 address is written ``::ffff:127.0.0.2`` as the kernel
    and Python 3.13 write it, not ``::ffff:7f00:2`` as older Pythons do, so a
    registry normalises to the same text on the controller and on every host.
    """
    if address.version == 6 and address.ipv4_mapped is not None:
        return '::ffff:%s' % address.ipv4_mapped
    return str(address)


def normalise_address(value):
    """Return (address, problem): an IP literal in its canonical text, or why it is not one.

    ``[::1]`` (an IPv6 literal in brackets, as in a URL) is accepted as ``::1``;
    zone indexes (``fe80::1%eth0``), padding and host names are not.
    """
    problem = 'is not an IPv4 or IPv6 address'
    if not isinstance(value, str) or not value or '%' in value or value != value.strip():
        return None, problem
    text = value
    if value.startswith('[') or value.endswith(']'):
        if not (value.startswith('[') and value.endswith(']')) or ':' not in value:
            return None, problem
        text = value[1:-1]
    address = _parse(text)
    if address is None:
        return None, problem
    return _text(address), None


def family_of(address):
    return 'ipv6' if ':' in address else 'ipv4'


def _bind(address, family=None, dual_stack=None):
    """A bind as (family, address, takes_ipv4): ``::`` takes IPv4 unless it is known to be V6ONLY.

    Addresses are compared as ``ipaddress`` objects, so ``::0001`` and ``::1``
    are one address; an IPv4-mapped address is that IPv4 address.
    """
    parsed = _parse(address)
    if parsed is None:
        # Not an IP literal (never from the registry or the kernel): compared as text.
        return family or family_of(address), address, False
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return 'ipv4', parsed.ipv4_mapped, False
    family = 'ipv6' if parsed.version == 6 else 'ipv4'
    takes_ipv4 = family == 'ipv6' and parsed.is_unspecified and dual_stack is not False
    return family, parsed, takes_ipv4


def _collide(first, second):
    family_a, address_a, v4_a = first
    family_b, address_b, v4_b = second
    if family_a == family_b:
        return address_a == address_b or any(_is_wildcard(address) for address in (address_a, address_b))
    # Across families only a dual-stack "::" collides, with every IPv4 address.
    return v4_a or v4_b


def _is_wildcard(address):
    return address in WILDCARDS.values() or bool(getattr(address, 'is_unspecified', False))


def entry_collides(entry_address, listener):
    """Whether a socket (``family``, ``address``, ``dual_stack`` as ``_sockets`` reads them) collides with an entry's address.

    An entry without an address claims the port everywhere, so every socket collides.
    """
    if entry_address is None:
        return True
    return _collide(_bind(entry_address), _bind(listener['address'], listener['family'], listener.get('dual_stack')))


def entries_collide(first_address, second_address):
    """Whether two registry entries on one port and protocol claim colliding addresses (None: every address)."""
    if first_address is None or second_address is None:
        return True
    return _collide(_bind(first_address), _bind(second_address))


def endpoint(address, port):
    """``127.0.0.2:53``, ``[::1]:53`` or plain ``53`` for an entry without an address."""
    if address is None:
        return str(port)
    return '%s:%d' % ('[%s]' % address if family_of(address) == 'ipv6' else address, port)
