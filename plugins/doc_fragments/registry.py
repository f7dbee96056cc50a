# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # Modules that act on the registry on a host.
    DOCUMENTATION = r"""
options:
  registry:
    description:
      - The registry, preferably as returned by M(qwf.collision_guard.validate_registry).
      - Each entry has C(port) and C(service) (a unit name, an alias, or a glob such as C(postgresql@*-main) that fits
        one loaded unit per host), and optionally C(protocol), C(address) (the IP address the service binds; none
        claims every address), C(restart) (its C(Restart=)), C(evict_holders) (units harden may arm against),
        C(private_tmp) (a C(private-tmp.conf) with C(PrivateTmp=yes) for the unit), C(pid_files) (PID and lock files
        the start check removes when the pid in them is dead or runs outside the unit) and C(notes).
      - C(private_tmp) and C(pid_files) are settings of the unit. It gets a private /tmp when any of its entries
        asks for one, and the PID files of all its entries.
    type: list
    elements: dict
    required: true
"""
