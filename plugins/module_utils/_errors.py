# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class CollisionGuardError(Exception):
    """A failure the collection can explain to its user.

    ``problems`` holds one line per bad value, so a caller can list every
    problem at once instead of stopping at the first.
    """

    def __init__(self, message, problems=None):
        super(CollisionGuardError, self).__init__(message)
        self.problems = list(problems or [])

    def full_message(self):
        if not self.problems:
            return str(self)
        return '%s\n%s' % (self, '\n'.join('  - %s' % problem for problem in self.problems))
