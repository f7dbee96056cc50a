# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test-only filters: ``ss -H -tulpn`` and psutil as the oracles for port_usage_info."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_PID = re.compile(r'pid=(\d+)')


def _split_endpoint(endpoint):
    address, port = endpoint.rsplit(':', 1)
    address = address.split('%', 1)[0]
    if address.startswith('[') and address.endswith(']'):
        address = address[1:-1]
    return address, int(port)


def ss_keys(stdout):
    """One 'protocol address port pid' key per socket and process in ``ss -H -tulpn`` output.

    ss writes ``*`` for an IPv6 wildcard socket that also takes IPv4.
    """
    keys = set()
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        address, port = _split_endpoint(fields[4])
        pids = _PID.findall(line) or ['-']
        for pid in pids:
            keys.add('%s %s %d %s' % (fields[0], address, port, pid))
    return sorted(keys)


def listener_keys(listeners):
    """The same keys for port_usage_info's listeners."""
    keys = set()
    for item in listeners:
        address = '*' if item.get('dual_stack') else item['address']
        keys.add('%s %s %d %s' % (item['protocol'], address, item['port'], item['pid'] if item['pid'] else '-'))
    return sorted(keys)


def psutil_comparison(listeners, found):
    """port_usage_info's listeners against psutil's (``found``: ``[{key: "protocol address port", pid}]``).

    Returns the endpoints only one of them sees, the sockets one process
    holds whose owner they name differently, and, for each socket several
    processes hold, how many of those psutil names (it names one).
    """
    ours = {}
    for item in listeners:
        ours.setdefault('%s %s %d' % (item['protocol'], item['address'], item['port']), set()).add(item['pid'])
    theirs = {}
    for item in found:
        theirs.setdefault(item['key'], set()).add(item['pid'])
    unshared = sorted(key for key in ours if len(ours[key]) == 1)
    return {
        'only_ours': sorted(set(ours) - set(theirs)),
        'only_theirs': sorted(set(theirs) - set(ours)),
        'unshared': len(unshared),
        'owner_differs': [key for key in unshared if theirs.get(key) != ours[key]],
        'shared': dict((key, {'holders': len(ours[key]), 'psutil_names': len(theirs.get(key, set()) & ours[key])})
                       for key in sorted(ours) if len(ours[key]) > 1),
    }


class FilterModule(object):
    def filters(self):
        return {'ss_keys': ss_keys, 'listener_keys': listener_keys, 'psutil_comparison': psutil_comparison}
