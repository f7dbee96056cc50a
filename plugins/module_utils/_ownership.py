# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Who owns a port, judged from the listeners that ``_sockets`` reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

OWNED = 'owned'
SQUATTED = 'squatted'
FREE = 'free'


def port_owner_state(listeners, unit):
    """``owned`` when every listener belongs to ``unit``, ``squatted`` when any other holds it, else ``free``."""
    if not listeners:
        return FREE
    if all(listener['unit'] == unit for listener in listeners):
        return OWNED
    return SQUATTED


def parse_host_time(text):
    """Seconds since the epoch for a host-local time as Ansible's command module reports it.

    ``str(datetime)`` omits the fraction when it is zero, so both forms occur.
    """
    for layout in ('%Y-%m-%d %H:%M:%S.%f', '%Y-%m-%d %H:%M:%S'):
        try:
            moment = datetime.datetime.strptime(text, layout)
        except ValueError:
            continue
        # A naive datetime is local time, as the command module wrote it.
        return time.mktime(moment.timetuple()) + moment.microsecond / 1e6
    raise ValueError('%r is not a time like 2026-11-27 20:54:49.123456' % (text,))
