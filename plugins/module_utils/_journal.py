# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""The journal lines of the host-side helpers, which systemd runs with stderr as the journal."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

# Journal priorities (sd-daemon prefixes), used when stderr is the journal.
NOTICE = 5
WARNING = 4
ERROR = 3


class Journal(object):
    """Writes ``identifier: line`` to stderr, with a priority prefix when stderr is the journal."""

    def __init__(self, identifier, stream=None, environ=None):
        self.identifier = identifier
        self.stream = stream or sys.stderr
        self.prefixed = 'JOURNAL_STREAM' in (os.environ if environ is None else environ)
        self.lines = []

    def log(self, priority, line):
        self.lines.append(line)
        prefix = '<%d>' % priority if self.prefixed else ''
        self.stream.write('%s%s: %s\n' % (prefix, self.identifier, line))
        self.stream.flush()
