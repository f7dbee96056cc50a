# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""systemd unit name grammar, as systemd.unit(5) defines it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# systemd allows ASCII letters, digits, ":", "-", "_", "." and "\" in unit
# names, at most 255 characters in all (UNIT_NAME_MAX).
UNIT_NAME_MAX = 255
_UNIT_CHARS = re.compile(r'^[A-Za-z0-9:_.\\-]+$')
_SERVICE_NAME = re.compile(r'^(?P<prefix>[^@]+)(?:@(?P<instance>[^@]*))?\.service$')


def service_unit_name_problem(name):
    """Return why ``name`` is not a startable .service unit name, or None.

    ``name`` must already carry its ``.service`` suffix.
    """
    if not name:
        return 'is empty'
    if len(name) > UNIT_NAME_MAX:
        return 'is longer than %d characters' % UNIT_NAME_MAX
    if not _UNIT_CHARS.match(name.replace('@', '')) or name.count('@') > 1:
        return ('contains characters systemd does not allow in unit names '
                '(allowed: letters, digits, ":", "-", "_", ".", "\\" and one "@")')
    # ".." is legal for systemd, but the name becomes a path under
    # /etc/systemd/system, so it is refused outright.
    if '..' in name:
        return 'contains ".."'
    match = _SERVICE_NAME.match(name)
    if not match:
        return 'is not a .service unit'
    if match.group('prefix')[0] in '.-':
        # A leading "-" would read as an option to systemctl and fuser.
        return 'starts with "%s"' % match.group('prefix')[0]
    if match.group('instance') == '':
        return 'is a template (no instance after "@"); name an instance such as foo@1.service'
    return None


UNIT_TYPES = ('service', 'socket', 'device', 'mount', 'automount', 'swap',
              'target', 'path', 'timer', 'slice', 'scope')


def as_service_unit(name):
    """Append ``.service`` unless the name already ends in a unit type.

    This mirrors what ``systemctl start NAME`` does with a bare name.
    """
    if '.' in name and name.rsplit('.', 1)[1] in UNIT_TYPES:
        return name
    return name + '.service'
