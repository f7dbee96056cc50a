# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


@pytest.fixture
def fixture_text():
    def read(name):
        with open(os.path.join(FIXTURES, name)) as handle:
            return handle.read()
    return read
