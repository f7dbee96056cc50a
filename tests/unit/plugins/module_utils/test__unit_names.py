# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import (
    UNIT_TYPES,
    DROPIN_UNIT_NAME_MAX,
    UNIT_NAME_MAX,
    as_service_unit,
    glob_matches,
    is_glob,
    type_case_problem,
    unit_name_problem,
)

CHARACTERS = 'contains characters systemd does not allow in unit names'

# (name, types, glob, problem or None)
NAMES = [
    ('sms-webhook.service', ('service',), False, None),
    ('getty@tty1.service', ('service',), False, None),
    ('a:b_c-d.e\\x2d.service', ('service',), False, None),
    ('ssh.socket', UNIT_TYPES, False, None),
    ('session-3.scope', UNIT_TYPES, False, None),
    ('ssh.socket', ('service',), False, 'is not a .service unit'),
    ('', ('service',), False, 'is empty'),
    ('x' * 248 + '.service', ('service',), False, 'is longer than 255 characters'),
    ('web', ('service',), False, 'is not a .service unit'),
    ('foo@.service', ('service',), False, 'is a template (no instance after "@"); name an instance such as '
                                          'foo@1.service'),
    ('a@b@c.service', ('service',), False, CHARACTERS),
    ('a b.service', ('service',), False, CHARACTERS),
    ('a;b.service', ('service',), False, CHARACTERS),
    ('a/b.service', ('service',), False, CHARACTERS),
    ('sshd.service\n', UNIT_TYPES, False, CHARACTERS),
    ('sshd.service\n', UNIT_TYPES, True, CHARACTERS),
    ('a..b.service', ('service',), False, 'contains ".."'),
    ('.x.service', ('service',), False, 'starts with "."'),
    ('-x.service', ('service',), False, 'starts with "-"'),
    ('web.Service', ('service',), False, 'is not a .service unit'),
    # Globs.
    ('web-*.service', ('service',), False, 'contains a glob character ("*" or "?"), which is not allowed here'),
    ('web-*.service', ('service',), True, None),
    ('postgresql@*-main.service', ('service',), True, None),
    ('postgresql@1?-main.service', ('service',), True, None),
    ('*.service', ('service',), True, None),
    ('foo;*.service', ('service',), True, CHARACTERS + ' (allowed: letters, digits, ":", "-", "_", ".", "\\", one "@" '
                                                       'and the globs "*" and "?")'),
    ('foo[ab].service', ('service',), True, CHARACTERS),
    ('foo@.service', ('service',), True, 'is a template'),
    ('foo@*.service', ('service',), True, None),
    ('web*.socket', ('service',), True, 'is not a .service unit'),
    ('-*.service', ('service',), True, 'starts with "-"'),
    # A trailing "*" may stand for the type: the default never-evict list has "systemd-*".
    # PID 1 loads instances of these types only: "systemctl show a@b.scope" fails with "Unknown object".
    ('a@b.target', UNIT_TYPES, False, None),
    ('a@b.timer', UNIT_TYPES, False, None),
    ('a@b.path', UNIT_TYPES, False, None),
    ('a@b.socket', UNIT_TYPES, False, None),
    ('a@b.scope', UNIT_TYPES, False, 'has an instance ("@"); systemd allows instances of .service, .socket, .target, '
                                     '.timer and .path units only'),
    ('a@b.mount', UNIT_TYPES, False, 'has an instance'),
    ('a@b.automount', UNIT_TYPES, False, 'has an instance'),
    ('a@b.swap', UNIT_TYPES, False, 'has an instance'),
    ('a@b.device', UNIT_TYPES, False, 'has an instance'),
    ('a@b.slice', UNIT_TYPES, False, 'has an instance'),
    ('a@*.slice', UNIT_TYPES, True, 'has an instance'),
    ('a@.scope', UNIT_TYPES, False, 'has an instance'),
    ('systemd-*', UNIT_TYPES, True, None),
    ('ssh*', UNIT_TYPES, True, None),
    ('*', UNIT_TYPES, True, None),
    ('user@*', UNIT_TYPES, True, None),
    ('systemd-*', UNIT_TYPES, False, 'contains a glob character'),
    ('systemd-?', UNIT_TYPES, True, 'is not a .service or .socket'),
    ('sshd', UNIT_TYPES, True, 'is not a .service or .socket'),
]


@pytest.mark.parametrize('name, types, glob, problem', NAMES,
                         ids=['%d-%s' % (index, item[0][:30]) for index, item in enumerate(NAMES)])
def test_unit_name_problem(name, types, glob, problem):
    found = unit_name_problem(name, types=types, glob=glob)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


@pytest.mark.parametrize('name, unit', [
    ('web', 'web.service'),
    ('web.service', 'web.service'),
    ('web.socket', 'web.socket'),
    ('api.v2', 'api.v2.service'),
    ('postgresql@*-main', 'postgresql@*-main.service'),
    ('getty@', 'getty@.service'),
    ('*', '*.service'),
])
def test_as_service_unit(name, unit):
    assert as_service_unit(name) == unit


# systemd knows its unit types in lowercase only: on Debian 12 and 13, "systemctl show -p Id foo.SERVICE" says
# Id=foo.SERVICE.service and "systemd-analyze verify foo.SERVICE" fails with "Invalid argument".
@pytest.mark.parametrize('name, problem', [
    ('foo.SERVICE', 'ends in ".SERVICE", but systemd\'s unit types are lowercase: it would read this as '
                    "'foo.SERVICE.service'; write 'foo.service', or 'foo.SERVICE.service' for a unit of that name"),
    ('web.Socket', 'ends in ".Socket", but systemd\'s unit types are lowercase: it would read this as '
                   "'web.Socket.service'; write 'web.socket', or 'web.Socket.service' for a unit of that name"),
    ('a.b.Scope', 'ends in ".Scope"'),
    ('pg@*.Service', 'ends in ".Service"'),
    ('foo.service', None),
    ('foo.SERVICE.service', None),
    ('foo', None),
    ('foo.', None),
    ('api.V2', None),
    ('SERVICE', None),
])
def test_type_case_problem(name, problem):
    found = type_case_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found.startswith(problem)


def test_the_longest_names():
    assert UNIT_NAME_MAX == 255 and DROPIN_UNIT_NAME_MAX == 253
    assert unit_name_problem('x' * 247 + '.service') is None
    assert unit_name_problem('x' * 248 + '.service') == 'is longer than 255 characters'


@pytest.mark.parametrize('name, glob', [('web.service', False), ('web-*.service', True), ('web?.service', True),
                                        ('a\\x2d.service', False), ('a[1].service', False)])
def test_is_glob(name, glob):
    assert is_glob(name) is glob


@pytest.mark.parametrize('pattern, name, matches', [
    ('postgresql@*-main.service', 'postgresql@15-main.service', True),
    ('postgresql@*-main.service', 'postgresql@15-replica.service', False),
    ('postgresql@1?-main.service', 'postgresql@15-main.service', True),
    ('postgresql@1?-main.service', 'postgresql@9-main.service', False),
    ('systemd-*', 'systemd-journald.socket', True),
    ('systemd-*', 'systemd-resolved.service', True),
    ('systemd-*', 'my-systemd-thing.service', False),
    ('user@*.service', 'user@1000.service', True),
    ('user@*.service', 'user-runtime-dir@1000.service', False),
    # Case-sensitive, as systemd is.
    ('Web*.service', 'web.service', False),
    # Only "*" and "?" are globs: "[" is literal.
    ('a[1].service', 'a[1].service', True),
    ('a[12].service', 'a1.service', False),
    ('sshd.service', 'sshd.service', True),
])
def test_glob_matches(pattern, name, matches):
    assert glob_matches(pattern, name) is matches
