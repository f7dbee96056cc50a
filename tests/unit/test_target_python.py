# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Code that runs on hosts must stay valid Python 3.8, the oldest the README promises."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import os

import pytest

PLUGINS = os.path.join(os.path.dirname(__file__), '..', '..', 'plugins')
TARGET_SIDE = sorted(glob.glob(os.path.join(PLUGINS, 'modules', '*.py')) +
                     glob.glob(os.path.join(PLUGINS, 'module_utils', '*.py')))
# Methods newer than 3.8 that the grammar check cannot see.
NEWER_METHODS = ('removeprefix', 'removesuffix')


@pytest.mark.parametrize('path', TARGET_SIDE, ids=os.path.basename)
def test_parses_as_python_3_8(path):
    with open(path) as handle:
        source = handle.read()
    tree = ast.parse(source, filename=path, feature_version=(3, 8))
    used = set(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute))
    assert not used & set(NEWER_METHODS)


def test_there_is_target_side_code():
    assert len(TARGET_SIDE) >= 8
