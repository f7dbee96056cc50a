# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""systemd unit name grammar, as systemd.unit(5) defines it, and unit name globs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import re

# systemd allows ASCII letters, digits, ":", "-", "_", "." and "\" in unit
# names, at most 255 characters in all (UNIT_NAME_MAX).
UNIT_NAME_MAX = 255
# A unit the collection writes a drop-in for needs a directory NAME.d, and a
# file name has at most 255 bytes (NAME_MAX): so such a unit's name has 253.
DROPIN_UNIT_NAME_MAX = UNIT_NAME_MAX - len('.d')
# \Z, not $: "$" also matches before a trailing newline, which would let
# "sshd.service\n" through.
_UNIT_CHARS = re.compile(r'^[A-Za-z0-9:_.\\-]+\Z')
_UNIT_NAME = re.compile(r'^(?P<prefix>[^@]+)(?:@(?P<instance>[^@]*))?\.(?P<type>[a-z]+)\Z')
# A glob may use "*" and "?" where a name has characters; nothing else.
GLOB_CHARS = '*?'

UNIT_TYPES = ('service', 'socket', 'device', 'mount', 'automount', 'swap',
              'target', 'path', 'timer', 'slice', 'scope')
# The types that may have instances (unit_type_may_template, systemd's src/shared/unit-file.c): PID 1
# refuses to load "a@b.scope" or "a@b.mount" at all.
INSTANCE_TYPES = ('service', 'socket', 'target', 'timer', 'path')


def is_glob(name):
    return any(char in name for char in GLOB_CHARS)


def unit_name_problem(name, types=('service',), glob=False):
    """Return why ``name`` is not a unit name of one of ``types`` (a glob of one, with ``glob``), or None.

    ``name`` must already carry its type suffix. Templates (``foo@.service``)
    are refused: only an instance can run and hold a port.
    """
    if not name:
        return 'is empty'
    if len(name) > UNIT_NAME_MAX:
        return 'is longer than %d characters' % UNIT_NAME_MAX
    if not glob and is_glob(name):
        return 'contains a glob character ("*" or "?"), which is not allowed here'
    plain = re.sub(r'[*?]', 'x', name) if glob else name
    if not _UNIT_CHARS.match(plain.replace('@', '')) or plain.count('@') > 1:
        return ('contains characters systemd does not allow in unit names '
                '(allowed: letters, digits, ":", "-", "_", ".", "\\", one "@"%s)'
                % (' and the globs "*" and "?"' if glob else ''))
    # ".." is legal for systemd, but the name becomes a path under
    # /etc/systemd/system, so it is refused outright.
    if '..' in name:
        return 'contains ".."'
    match = _UNIT_NAME.match(plain)
    if glob and name.endswith('*') and (not match or match.group('type') not in types):
        # A trailing "*" also stands for the type suffix: "systemd-*" fits
        # systemd-journald.service and systemd-journald.socket alike.
        match = _UNIT_NAME.match(plain + '.' + types[0])
    if not match or match.group('type') not in types:
        return 'is not a %s unit' % ' or '.join('.' + kind for kind in types)
    if match.group('prefix')[0] in '.-':
        # A leading "-" would read as an option to systemctl and fuser.
        return 'starts with "%s"' % match.group('prefix')[0]
    if match.group('instance') is not None and match.group('type') not in INSTANCE_TYPES:
        return 'has an instance ("@"); systemd allows instances of %s and .%s units only' % (
            ', '.join('.' + kind for kind in INSTANCE_TYPES[:-1]), INSTANCE_TYPES[-1])
    if match.group('instance') == '':
        return 'is a template (no instance after "@"); name an instance such as foo@1.%s' % match.group('type')
    return None


def as_service_unit(name):
    """Append ``.service`` unless the name already ends in a unit type.

    This mirrors what ``systemctl start NAME`` does with a bare name.
    """
    if '.' in name and name.rsplit('.', 1)[1] in UNIT_TYPES:
        return name
    return name + '.service'


def type_case_problem(name):
    """Why ``name``, which ends in a unit type in the wrong case (``foo.SERVICE``), is refused, or None.

    systemd knows its types in lowercase only: it reads ``foo.SERVICE`` as a
    bare name and ``systemctl`` makes it ``foo.SERVICE.service``, a unit that
    is almost never the one meant. A unit really named so is written in full.
    """
    suffix = name.rsplit('.', 1)[1] if '.' in name else ''
    if suffix in UNIT_TYPES or suffix.lower() not in UNIT_TYPES:
        return None
    read_as = name + '.service'
    return ('ends in ".%s", but systemd\'s unit types are lowercase: it would read this as %r; write %r, '
            'or %r for a unit of that name' % (suffix, read_as, name[:-len(suffix)] + suffix.lower(), read_as))


def glob_matches(pattern, name):
    """Whether a unit name matches a glob of ``is_glob``: "*" and "?" only, case-sensitive."""
    return fnmatch.fnmatchcase(name, pattern.replace('[', '[[]'))
