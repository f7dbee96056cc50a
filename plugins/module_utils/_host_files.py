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


def write_atomically(path, content, replace=os.rename):
    """Replace ``path`` with ``content`` (bytes, mode 0644) in one rename, so a reader sees the old file or the new one.

    Modules pass ``module.atomic_move`` as ``replace``, which also keeps SELinux contexts.
    """
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o644)
        replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
