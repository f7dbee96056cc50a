# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re

import pytest
import yaml

ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'roles')


def load(*parts):
    with open(os.path.join(ROLES, *parts)) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('role', sorted(os.listdir(ROLES)))
def test_argument_specs_mirror_defaults(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(options) == sorted(defaults)
    for name, value in defaults.items():
        assert name.startswith('collision_guard_')
        assert options[name]['default'] == value, name
        assert options[name]['description'], name


@pytest.mark.parametrize('role', sorted(os.listdir(ROLES)))
def test_every_description_line_is_text(role):
    # A ": " in a plain YAML line turns it into a mapping, which ansible-doc renders as garbage.
    spec = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']
    lines = list(spec['description'])
    for option in spec['options'].values():
        lines.extend(option['description'])
    assert [line for line in lines if not isinstance(line, str)] == []


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(ROLES, '*', 'tasks', '*.yml'))))
def test_checks_match_whole_strings(path):
    # "$" also matches before a trailing newline, which would let a path split a unit's command line.
    with open(path) as handle:
        text = handle.read()
    assert re.findall(r"""\b(?:match|search|regex)\((['"])[^'"]*\$[^'"]*\1""", text) == []
