# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""systemctl, one way for the modules and one for the host-side helpers.

The helpers run without AnsibleModule and are always bounded in time; the
modules fail, saying what they asked, when systemd cannot answer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError
from ansible_collections.qwf.collision_guard.plugins.module_utils._systemd_formats import parse_unit_properties, show_command


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


def ask_systemd(module, argv, what):
    """For modules: run ``argv`` (``systemctl ...``) with the host's systemctl; its stdout.

    Fails the module when systemctl exits non-zero; ``what`` says what was asked.
    """
    argv = [module.get_bin_path('systemctl', required=True)] + list(argv[1:])
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg='Cannot ask systemd %s: %s exited %d: %s' % (what, ' '.join(argv[:2]), rc, err.strip()))
    return out


def module_systemd(module):
    """For modules: ``(show, run)``, the two ways ``_ownership.survey`` asks systemd."""

    def show(units, properties):
        return parse_unit_properties(ask_systemd(module, show_command(units, properties), 'about its units'), units)

    def run(argv):
        return ask_systemd(module, argv, 'to %s' % argv[1])

    return show, run
