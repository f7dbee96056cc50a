# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which of the collection's module_utils a Python file imports.

One walk for the two sides of the host programs: the controller follows it
to put exactly those files into a program's archive, and the guard check on
a host follows it to tell an archive that lacks one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast

PACKAGE = 'ansible_collections.qwf.collision_guard.plugins.module_utils'
# The package's directory inside an archive, and its parents, outermost first.
PACKAGE_DIRS = tuple('/'.join(PACKAGE.split('.')[:depth]) for depth in range(1, len(PACKAGE.split('.')) + 1))


def imported_modules(source, filename='<source>'):
    """The names (``_eviction``, ...) of the collection's module_utils that ``source`` imports; SyntaxError if not Python."""
    names = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                names.extend(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + '.'):
                names.append(node.module[len(PACKAGE) + 1:].split('.')[0])
        elif isinstance(node, ast.Import):
            names.extend(alias.name[len(PACKAGE) + 1:].split('.')[0] for alias in node.names
                         if alias.name.startswith(PACKAGE + '.'))
    return sorted(set(names))


def module_member(name):
    """The path of module_utils ``name`` inside an archive."""
    return '%s/%s.py' % (PACKAGE_DIRS[-1], name)


def missing_modules(main_source, read_member, filename='__main__.py'):
    """``(needed, missing)``: the module names ``main_source`` needs, transitively, and those ``read_member`` lacks.

    ``read_member(name)`` returns a module's source, or None when there is
    none. SyntaxError names the file that is not Python.
    """
    needed, missing = [], []
    pending = imported_modules(main_source, filename)
    while pending:
        name = pending.pop(0)
        if name in needed or name in missing:
            continue
        source = read_member(name)
        if source is None:
            missing.append(name)
            continue
        needed.append(name)
        pending.extend(imported_modules(source, module_member(name)))
    return sorted(needed), sorted(missing)
