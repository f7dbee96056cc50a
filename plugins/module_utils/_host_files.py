# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""Reading and writing the files the modules manage on a host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile


def read_bytes(path):
    """The file's bytes, or None when it cannot be read (most often: it does not exist)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def write_atomically(module, path, content):
    """Write ``content`` (bytes) to ``path`` through a temp file in the same directory, so no reader sees half of it."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix='.collision-guard-')
    with os.fdopen(fd, 'wb') as handle:
        handle.write(content)
    module.atomic_move(temp_path, path)
