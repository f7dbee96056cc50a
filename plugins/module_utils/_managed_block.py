# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# PRIVATE: this module_utils file is internal to qwf.collision_guard and may
# change without notice. Do not import it from other collections.

"""A block between two marker lines in a text file, placed as ansible.builtin.blockinfile places it.

The same bytes as blockinfile with ``insertafter: EOF``, so files it wrote stay unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DEFAULT_MARKER = '<!-- {mark} qwf.collision_guard port registry -->'


def marker_problem(marker):
    """Why ``marker`` cannot frame a block (it needs ``{mark}`` and one line), or None."""
    if not isinstance(marker, str) or '{mark}' not in marker:
        return 'marker: %r has no {mark}' % (marker,)
    if any(character in marker for character in '\r\n\0'):
        return 'marker: %r is not one line' % (marker,)
    return None


def marker_lines(marker):
    """The BEGIN and END lines of ``marker``, as bytes with their newline."""
    return tuple((marker.replace('{mark}', mark) + '\n').encode('utf-8') for mark in ('BEGIN', 'END'))


def with_block(content, block, marker, present=True):
    """``content`` (bytes, None for no file) with ``block`` (text) between the markers, or without it.

    An existing block is replaced where it is; a new one goes at the end. An empty block, or
    ``present=False``, removes the block and its markers.
    """
    begin, end = marker_lines(marker)
    lines = (content or b'').splitlines(True)
    block_bytes = block.encode('utf-8') if present else b''
    new_lines = []
    if block_bytes:
        if not block_bytes.endswith(b'\n'):
            block_bytes += b'\n'
        new_lines = [begin] + block_bytes.splitlines(True) + [end]
    first = last = None
    for index, line in enumerate(lines):
        if line == begin:
            first = index
        if line == end:
            last = index
    if first is None or last is None:
        if not new_lines:
            return content or b''
        at = len(lines)
    else:
        at = min(first, last)
        del lines[at:max(first, last) + 1]
    if at > 0 and not lines[at - 1].endswith(b'\n'):
        lines[at - 1] += b'\n'
    lines[at:at] = new_lines
    return b''.join(lines)
