# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a file the plan module probed already holds what the role would write there."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib


def sha1_of_text(content):
    """The SHA-1 of ``content`` as copy writes it: UTF-8."""
    return hashlib.sha1(content.encode('utf-8', 'surrogateescape')).hexdigest()


def probe_holds(probe, sha1, mode, uid=0, gid=0):
    """Whether ``probe`` (guard_dropins's RV(probed_files) of one path) is a regular file with these bytes, mode and owner.

    Anything else, a probe that is missing included, is False: then the
    role's task runs and writes, as it would without the probe.
    """
    if not isinstance(probe, dict) or probe.get('type') != 'file' or not probe.get('sha1'):
        return False
    return (probe.get('sha1'), probe.get('mode'), probe.get('uid'), probe.get('gid')) == (sha1, mode, uid, gid)
