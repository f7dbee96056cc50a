# -*- coding: utf-8 -*-
# Copyright (c) qwf.collision_guard contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The registry validation, fuzzed with hostile values.

Whatever a user, a template or a planted registry.json holds, validation
either returns a registry every later step can use as it is or raises
CollisionGuardError listing every bad value: no other error escapes. The
unit names it accepts are accepted by systemd, here by a transcription of
systemd's grammar and in Molecule (verify_unit_names.yml) by systemd itself,
with a sample this file writes: molecule/default/files/accepted_unit_names.txt.
To write it again after a change of the grammar:

    python tests/unit/plugins/module_utils/test_validation_fuzz.py > molecule/default/files/accepted_unit_names.txt
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import random
import re
import string
import sys

import pytest

hypothesis = pytest.importorskip('hypothesis')
from hypothesis import HealthCheck, event, given, settings, strategies as st  # noqa: E402

from ansible_collections.qwf.collision_guard.plugins.action.validate_registry import check_values  # noqa: E402
from ansible_collections.qwf.collision_guard.plugins.filter.registry_table import FilterModule  # noqa: E402
from ansible_collections.qwf.collision_guard.plugins.module_utils._errors import CollisionGuardError  # noqa: E402
from ansible_collections.qwf.collision_guard.plugins.module_utils._registry import (  # noqa: E402
    DEFAULT_NEVER_EVICT,
    ENTRY_KEYS,
    PROTOCOLS,
    RESTART_VALUES,
    load_registry_document,
    registry_warnings,
    shown,
    validate_registry,
)
from ansible_collections.qwf.collision_guard.plugins.module_utils._unit_names import (  # noqa: E402
    DROPIN_UNIT_NAME_MAX,
    UNIT_TYPES,
    is_glob,
    unit_name_problem,
)

FIXTURE = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'molecule', 'default', 'files',
                       'accepted_unit_names.txt')
SOURCE = 'collision_guard_registry'
FUZZ = settings(max_examples=10000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Characters free text may not carry, as the validator refuses them.
UNSAFE = re.compile(r'[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]')
registry_table = FilterModule().filters()['registry_table']


def systemd_accepts(name):
    """systemd's unit_name_is_valid(name, UNIT_NAME_PLAIN | UNIT_NAME_INSTANCE), transcribed from src/basic/unit-name.c."""
    if not name or len(name) >= 256:
        return False
    dot = name.rfind('.')
    if dot <= 0 or name[dot + 1:] not in UNIT_TYPES:
        return False
    valid = set(string.digits + string.ascii_letters + ':-_.\\@')
    if any(char not in valid for char in name[:dot]):
        return False
    at = name.find('@', 0, dot)
    # No "@" at all, or one with an instance after it: a template (foo@.service) cannot be loaded,
    # and PID 1 loads instances of the types of unit_type_may_template only (src/shared/unit-file.c).
    return at == -1 or (at > 0 and dot > at + 1 and name[dot + 1:] in ('service', 'socket', 'target', 'timer', 'path'))


# Hostile values.
CONTROL = ''.join(chr(code) for code in list(range(0x20)) + list(range(0x7f, 0xa0))) + (
    '\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ud800\udfff\ufeff\u200b')
ODD = ' /;$`\'"|&<>()[]{}%#!~^+=,é\u2603\U0001f600'
NAME_CHARS = string.ascii_letters + string.digits + ':-_.\\@'
SUFFIXES = ([''] + ['.' + kind for kind in UNIT_TYPES]
            + ['.SERVICE', '.Service', '.Socket', '.sERVICE', '.services', '.', '.d', '.conf'])

# Built by map: hypothesis writes its strategies' arguments, and Python refuses to write an int of 5000 digits.
huge_ints = st.tuples(st.integers(min_value=0, max_value=6000), st.sampled_from([-1, 0, 1])).map(
    lambda item: 10 ** item[0] + item[1]) | st.integers(min_value=0, max_value=6000).map(lambda digits: -10 ** digits)
digit_strings = (st.text(alphabet='0123456789', max_size=12)
                 | st.tuples(st.integers(0, 6000), st.sampled_from('0159')).map(lambda item: item[1] * item[0])
                 | st.tuples(st.integers(0, 6000), st.integers(0, 70000)).map(lambda item: '0' * item[0] + str(item[1])))
ports = st.one_of(st.integers(min_value=-2, max_value=70000), st.integers(), huge_ints, digit_strings,
                  st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                  st.sampled_from(['80 ', ' 80', '80\n', '+80', '-80', '0x50', '8_0', '\u0668\u0660', '80.0', '1e3']))
control_text = st.text(alphabet=st.sampled_from(CONTROL + 'ab |\n\t'), max_size=20)
free_text = st.one_of(st.text(max_size=40), control_text,
                      st.text(alphabet=st.characters(codec=None, categories=('Cc', 'Cf', 'Cs', 'Zl', 'Zp', 'Zs', 'Ll')),
                              max_size=20))
escapes = st.sampled_from(['\\x2d', '\\x20', '\\x40', '\\\\', '\\', '\\x2e', '\\x2f', '\\u00e9'])
name_pieces = st.one_of(st.text(alphabet=NAME_CHARS, min_size=1, max_size=12), escapes,
                        st.sampled_from(['@', '@@', '..', '.', '-', '*', '?', '*?', '[', ']', '/', ' ']),
                        st.text(alphabet=ODD + CONTROL, min_size=1, max_size=2))
unit_names = st.one_of(
    st.tuples(st.lists(name_pieces, min_size=1, max_size=6).map(''.join), st.sampled_from(SUFFIXES)).map(''.join),
    st.tuples(st.text(alphabet='abcx-', min_size=1, max_size=3), st.integers(230, 262),
              st.sampled_from(SUFFIXES)).map(lambda item: (item[0] * item[1])[:item[1]] + item[2]),
    st.sampled_from(['foo@.service', 'foo@bar.service', 'foo@', '@foo', 'foo@bar@baz', 'foo\\x2dbar', '-.slice',
                     '*', '*.service', '?', 'systemd-*', 'sshd.service\n', 'a..b', '.hidden', '-x', 'foo.SERVICE',
                     'ssh@*', 'user@1000.service', 'init.scope', 'a:b_c-d.e\\x2d', 'web*.socket', '']),
    st.text(max_size=20))
# Names of systemd's alphabet, often valid: a prefix, maybe an instance, maybe a type.
likely_names = st.tuples(st.text(alphabet=NAME_CHARS.replace('@', ''), min_size=1, max_size=20),
                         st.sampled_from(['', '', '@']), st.text(alphabet=NAME_CHARS, max_size=8),
                         st.sampled_from(['', '', '.service', '.service', '.socket', '.Service'])).map(
    lambda item: item[0] + (item[1] + item[2] if item[1] else '') + item[3])
addresses = st.one_of(st.none(), st.ip_addresses().map(str),
                      st.ip_addresses(v=6).map(lambda address: '[%s]' % address),
                      st.ip_addresses().map(lambda address: '%s%s' % (address, '%eth0')),
                      st.ip_addresses().map(lambda address: ' %s' % address),
                      st.ip_addresses().map(lambda address: '%s\n' % address),
                      st.sampled_from(['localhost', '::ffff:127.0.0.1', '::0001', '0.0.0.0', '::', '127.0.0.1/8',
                                       '1.2.3.4:53', '[1.2.3.4]', '256.1.1.1', '01.2.3.4', '::1%1']),
                      st.text(max_size=20), st.integers())
scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_ints, st.floats(), st.text(max_size=10), control_text,
                    st.binary(max_size=4))
junk = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=3), st.tuples(children), st.frozensets(st.integers(), max_size=2),
    st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), huge_ints, st.none()), children, max_size=3)),
    max_leaves=5)


def maybe(strategy):
    return st.one_of(strategy, strategy, strategy, junk)


# PID file paths reach the helper's command line in a unit file: plain ones, and every kind of near miss.
pid_file_paths = st.one_of(
    st.lists(st.text('abcXYZ019._+-', min_size=1, max_size=8), min_size=1, max_size=4).map(lambda parts: '/' + '/'.join(parts)),
    st.sampled_from(['/run/a.pid', '/run/../etc/shadow', '/run/./a', '/proc/1/stat', '/run/a.pid/', 'run/a.pid', '/',
                     '/run/a b.pid', '/run/%n.pid', '/run/$x.pid', '/run/a\\x.pid', '/run/a.pid\n', '/run/a;b']),
    st.text(max_size=12))
hashable_keys = st.one_of(
    st.sampled_from(['proto', 'Port', 'note', ' port', 'port ']), st.text(max_size=8), st.integers(),
    huge_ints, st.none(), st.booleans(), st.floats(), st.binary(max_size=3),
    st.tuples(st.integers()), st.frozensets(st.integers(), max_size=2))
entries = st.tuples(st.fixed_dictionaries({}, optional={
    'port': maybe(ports),
    'service': maybe(unit_names),
    'protocol': maybe(st.sampled_from(PROTOCOLS + ('TCP', 'sctp', '', ' tcp'))),
    'address': maybe(addresses),
    'restart': maybe(st.sampled_from(RESTART_VALUES + ('', 'Always', 'sometimes')) | st.booleans() | st.none()),
    'evict_holders': maybe(st.none() | st.lists(st.one_of(unit_names, unit_names, junk), max_size=3)),
    'private_tmp': maybe(st.none() | st.booleans()),
    'pid_files': maybe(st.none() | st.lists(st.one_of(pid_file_paths, pid_file_paths, junk), max_size=3)),
    'notes': maybe(st.none() | free_text),
}), st.dictionaries(hashable_keys, junk, max_size=1)).map(lambda pair: dict(pair[1], **pair[0]))
# Entries from a small pool of ports and services, so collisions, duplicates and restarts that disagree come up.
plain_entries = st.fixed_dictionaries({'port': st.sampled_from([53, 80, '80', 8765]),
                                       'service': st.sampled_from(['web', 'web.service', 'dns', 'pg@*-main'])},
                                      optional={'protocol': st.sampled_from(PROTOCOLS),
                                                'address': st.sampled_from([None, '127.0.0.1', '::1', '0.0.0.0', '::',
                                                                            '::ffff:127.0.0.1']),
                                                'restart': st.sampled_from(('', 'always', 'no')),
                                                'evict_holders': st.lists(st.sampled_from(['a', 'b.socket']), max_size=2),
                                                'notes': free_text})
# Hostile values a validator may well accept: odd unit names, padded ports, any notes, every address spelling.
likely_entries = st.fixed_dictionaries({'port': st.one_of(st.integers(1, 65535), st.integers(1, 65535).map(str),
                                                          st.integers(0, 70000).map(lambda port: '000%d' % port)),
                                        'service': st.one_of(likely_names, likely_names, unit_names)},
                                       optional={'protocol': st.sampled_from(PROTOCOLS),
                                                 'address': st.one_of(st.none(), st.ip_addresses().map(str), addresses),
                                                 'restart': st.sampled_from(('', 'always', 'on-failure', None)),
                                                 'evict_holders': st.none() | st.lists(likely_names | unit_names, max_size=2),
                                                 'private_tmp': st.booleans(),
                                                 'pid_files': st.lists(pid_file_paths, max_size=2),
                                                 'notes': st.none() | free_text})
registries = st.one_of(st.lists(st.one_of(entries, entries, plain_entries, junk), max_size=4),
                       st.lists(likely_entries, max_size=3), st.lists(st.one_of(likely_entries, plain_entries), max_size=4),
                       st.lists(plain_entries, max_size=5), junk)
never_evicts = st.one_of(st.just(list(DEFAULT_NEVER_EVICT)), st.lists(unit_names, max_size=3), junk)


def single_line(problem):
    return isinstance(problem, str) and not UNSAFE.search(problem) and '\n' not in problem and len(problem) < 2000


def check_accepted(entries_found):
    """Every accepted entry is one the hosts can use as it is."""
    for entry in entries_found:
        assert sorted(entry) == sorted(ENTRY_KEYS)
        assert isinstance(entry['port'], int) and not isinstance(entry['port'], bool) and 1 <= entry['port'] <= 65535
        assert entry['protocol'] in PROTOCOLS
        assert entry['restart'] in ('',) + RESTART_VALUES
        assert entry['address'] is None or str(ipaddress.ip_address(entry['address'])) == entry['address'] or (
            entry['address'].startswith('::ffff:'))
        assert isinstance(entry['notes'], str) and not UNSAFE.search(entry['notes'])
        service = entry['service']
        assert service.endswith('.service') and unit_name_problem(service, glob=True) is None
        if not is_glob(service):
            assert systemd_accepts(service) and len(service) <= DROPIN_UNIT_NAME_MAX, service
        for holder in entry['evict_holders']:
            assert systemd_accepts(holder), holder
        assert isinstance(entry['private_tmp'], bool)
        for path in entry['pid_files']:
            # Read literally by systemd's command-line parser, and a real path, never one through ".." or in /proc.
            assert re.match(r'(/[A-Za-z0-9._+-]+)+\Z', path) and os.path.normpath(path) == path, path
            assert not path.startswith(('/proc/', '/sys/', '/dev/')), path
    # The hosts validate the registry.json the role wrote from it again, and must find it the same.
    assert validate_registry(json.loads(json.dumps(entries_found))) == entries_found
    assert all(isinstance(warning, str) for warning in registry_warnings(entries_found))
    table = registry_table(entries_found, [])
    assert not UNSAFE.search(table)
    rows = table.split('\n')
    assert len(rows) == len(entries_found) + 3 and rows[-1] == ''
    assert all(len(re.findall(r'(?<!\\)\|', row)) == 6 for row in rows[:-1])


@FUZZ
@given(registry=registries, never_evict=never_evicts, both=st.sampled_from(['allow', 'error']))
def test_only_the_collections_error_escapes_and_accepted_registries_are_usable(registry, never_evict, both):
    try:
        entries_found, problems = check_values(registry, SOURCE, never_evict, both)
    except CollisionGuardError as error:
        # Only a registry that is not a list at all.
        assert not isinstance(registry, list) and not error.problems and single_line(str(error))
        event('refused: not a list')
        return
    assert all(single_line(problem) for problem in problems), problems
    if not problems:
        event('accepted, %s' % ('empty' if not entries_found else 'with entries'))
        check_accepted(entries_found)
        return
    event('refused, %d problem(s)' % min(len(problems), 3))
    # Every bad entry is named, whatever the others hold: each alone gives the problems it gives among them.
    if isinstance(registry, list):
        for index, entry in enumerate(registry):
            try:
                validate_registry([entry], where=SOURCE)
            except CollisionGuardError as error:
                for problem in error.problems:
                    assert problem.replace('%s[0]' % SOURCE, '%s[%d]' % (SOURCE, index), 1) in problems


@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(name=st.one_of(likely_names, unit_names))
def test_every_unit_name_the_validator_accepts_is_one_systemd_accepts(name):
    for unit in _accepted(name):
        event('accepted')
        assert systemd_accepts(unit), unit


@pytest.fixture(scope='module')
def document_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp('fuzz') / 'registry.json')


@settings(max_examples=500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=st.one_of(
    st.fixed_dictionaries({'registry': registries}, optional={'never_evict': never_evicts, 'managed_by': junk}),
    junk), text=st.one_of(st.none(), st.none(), st.none(), st.text(max_size=30), st.sampled_from(['[' * 100000, '{"registry": [' + '1' * 5000 + ']}'])))
def test_a_registry_document_on_a_host_never_raises_anything_else(document_path, document, text):
    with open(document_path, 'w') as handle:
        if text is None:
            try:
                text = json.dumps(document, default=repr, skipkeys=True)
            except ValueError:
                # An int too long for Python to write: the file gets Python's words for the document instead.
                text = shown(document)
        handle.write(text)
    try:
        loaded = load_registry_document(document_path)
    except CollisionGuardError as error:
        assert all(single_line(problem) for problem in error.problems)
        return
    check_accepted(loaded['registry'])


# The accepted names systemd itself checks in Molecule.
SAMPLE_SIZE = 400
EDGE_NAMES = ['x' * 245 + '.service', 'y' * 248 + '.socket', 'z' * 250 + '.scope', 'a@' + 'b' * 243 + '.service',
              'foo@bar.service', 'foo\\x2dbar.service', 'getty@tty1.service', 'a:b_c-d.e\\x2d.service',
              'foo.SERVICE.service', 'x.service', '0.service', 'a-.service', 'a_.service', 'a\\.service',
              'a@b.c.service', 'a@-.service', 'a@.b.service', 'a@\\x2d.service', 'A.service', 'a:.service']


def _candidate(rng):
    """A unit name as a user might write one, often odd."""
    pieces = []
    for dummy in range(rng.randint(1, 6)):
        roll = rng.random()
        if roll < 0.6:
            pieces.append(''.join(rng.choice(NAME_CHARS) for dummy in range(rng.randint(1, 10))))
        elif roll < 0.75:
            pieces.append(rng.choice(['\\x2d', '\\x20', '\\x40', '\\\\', '\\', '\\x2e', '\\u00e9']))
        elif roll < 0.85:
            pieces.append(rng.choice(['@', '.', '-', '_', ':', '..', '@@']))
        else:
            pieces.append(rng.choice(ODD))
    name = ''.join(pieces)
    if rng.random() < 0.05:
        name = (name * 60)[:rng.randint(240, 256)]
    return name + rng.choice(SUFFIXES)


def _accepted(name):
    """The names the validator makes of ``name``: as a registered service and as a holder."""
    found = []
    for entry in ({'port': 1, 'service': name}, {'port': 1, 'service': 'a', 'evict_holders': [name]}):
        try:
            accepted, = validate_registry([entry])
        except CollisionGuardError:
            continue
        found.extend([accepted['service']] if 'evict_holders' not in entry else accepted['evict_holders'])
    return [unit for unit in found if not is_glob(unit) and unit != 'a.service' or unit == name == 'a.service']


def accepted_unit_names(size=SAMPLE_SIZE, seed=11):
    """A sample of unit names the validator accepts, the same on every run and Python version."""
    rng = random.Random(seed)
    names = []
    for name in EDGE_NAMES:
        names.extend(unit for unit in _accepted(name) if unit not in names)
    while len(names) < size:
        names.extend(unit for unit in _accepted(_candidate(rng)) if unit not in names)
    return names[:size]


def read_fixture():
    with open(FIXTURE) as handle:
        return handle.read().splitlines()


def test_the_fixture_is_the_sample_of_accepted_names():
    assert read_fixture() == accepted_unit_names(), 'write the fixture again, as this file says at its top'


def test_the_validator_accepts_every_name_of_the_fixture_as_it_is():
    names = read_fixture()
    assert len(names) == SAMPLE_SIZE and len(set(names)) == SAMPLE_SIZE
    kinds = set()
    for name in names:
        assert systemd_accepts(name), name
        accepted, = validate_registry([{'port': 1, 'service': 'a', 'evict_holders': [name]}])
        assert accepted['evict_holders'] == [name]
        kinds.add(name.rsplit('.', 1)[1])
        if name.endswith('.service') and len(name) <= DROPIN_UNIT_NAME_MAX:
            assert validate_registry([{'port': 1, 'service': name}])[0]['service'] == name
    # The sample covers every unit type, instances, escapes and the longest names.
    assert kinds == set(UNIT_TYPES)
    assert any('@' in name for name in names) and any('\\x2d' in name for name in names)
    assert max(len(name) for name in names) == 255


def test_the_negative_control_of_the_molecule_check_holds_names_the_validator_refuses():
    import yaml
    with open(os.path.join(os.path.dirname(FIXTURE), '..', 'verify_unit_names.yml')) as handle:
        play, = yaml.safe_load(handle)
    names = [name for name in play['vars']['refused_names'] if '{{' not in name]
    assert names
    for name in names:
        assert not _accepted(name) and not systemd_accepts(name), name


def test_systemd_accepts_transcription():
    assert [systemd_accepts(name) for name in ['foo.service', 'foo@bar.service', 'foo@.service', '@foo.service',
                                               'foo.SERVICE', '.service', 'a@b@c.service', 'a b.service',
                                               'x' * 247 + '.service', 'x' * 248 + '.service', 'a@b.scope',
                                               'a@b.timer']] == [
        True, True, False, False, False, False, True, False, True, False, False, True]


if __name__ == '__main__':
    sys.stdout.write(''.join('%s\n' % name for name in accepted_unit_names()))
