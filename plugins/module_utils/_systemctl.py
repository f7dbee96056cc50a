# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""systemctl for the host-side helpers, which run without AnsibleModule: always bounded in time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd import parse_unit_properties


def run_systemctl(argv, deadline):
    """Run a systemctl command within what is left until ``deadline``; its stdout, or None."""
    # Imported here: most evictions never ask systemd, and every start pays for imports.
    import subprocess
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                                timeout=max(0.5, deadline - time.monotonic()), check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def show_properties(units, properties, deadline):
    """Map each unit to the asked properties; empty when systemd cannot answer in time."""
    if not units:
        return {}
    output = run_systemctl(['systemctl', 'show', '--property=' + ','.join(properties), '--'] + list(units), deadline)
    try:
        return parse_unit_properties(output or '', units)
    except CollisionGuardError:
        return {}
