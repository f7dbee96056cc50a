# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""The drop-ins the modules keep: written when their text differs, removed only when the collection wrote them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

from ansible_collections.qwf.collision_guard.plugins.module_utils._dropin import is_managed
from ansible_collections.qwf.collision_guard.plugins.module_utils._safe_files import read_bytes, write_atomically

DROPIN_MODE = '0644'


def remove(path):
    os.remove(path)
    # An empty drop-in directory means nothing; one left empty by this removal goes too.
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass


def sync_dropin(module, path, desired):
    """Bring one drop-in to ``desired`` (text, or None for absent). Returns (changed, diff or None)."""
    before = read_bytes(path)
    before_text = to_text(before or b'', errors='surrogate_or_replace')
    if desired is None:
        if before is None:
            return False, None
        if not is_managed(before_text):
            module.warn('%s was not written by qwf.collision_guard; it is left in place.' % path)
            return False, None
        if not module.check_mode:
            remove(path)
        return True, {'before_header': path, 'after_header': '%s (removed)' % path, 'before': before_text, 'after': ''}
    desired_bytes = to_bytes(desired)
    diff = None
    if before != desired_bytes:
        if before is not None and not is_managed(before_text):
            module.warn('%s was not written by qwf.collision_guard; it is replaced.' % path)
        diff = {'before_header': path, 'after_header': path, 'before': before_text, 'after': desired}
        if not module.check_mode:
            try:
                write_atomically(path, desired_bytes, module.atomic_move)
            except (IOError, OSError) as error:
                module.fail_json(msg='Cannot write %s: %s' % (path, to_native(error)))
    # atomic_move keeps an old file's mode or applies the umask to a new
    # one, so the mode is enforced separately (check mode aware).
    mode_changed = module.set_mode_if_different(path, DROPIN_MODE, False) if os.path.exists(path) else False
    return diff is not None or mode_changed, diff
