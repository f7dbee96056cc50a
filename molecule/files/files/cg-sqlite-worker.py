"""A writer or a reader of one SQLite database, with no busy timeout.

cg-sqlite-worker.py writer|reader DATABASE STATS

writer: commits one row at a time, in a loop.
reader: holds read transactions of HOLD seconds (BEGIN; SELECT; sleep; COMMIT),
and between them looks up the newest row every few milliseconds, as a
dashboard polls between its reports.
Both keep one connection open for their whole life, across a journal-mode
switch, and write their cumulative counts (operations, "database is locked"
errors, other errors) to STATS as JSON, atomically.
"""
import json
import os
import sqlite3
import sys
import time

HOLD = 0.3
WRITER_PAUSE = 0.02
LOOKUPS = 10
LOOKUP_PAUSE = 0.005


def save(path, counts):
    tmp = path + '.tmp'
    with open(tmp, 'w') as stream:
        json.dump(counts, stream)
    os.replace(tmp, path)


def count(counts, operation):
    try:
        operation()
        counts['ops'] += 1
    except sqlite3.OperationalError as exc:
        if 'database is locked' in str(exc):
            counts['locked'] += 1
        else:
            counts['other'] += 1
            counts['last_other'] = str(exc)


def main():
    role, database, stats = sys.argv[1:4]
    # timeout=0: no busy timeout, so every lock conflict is an error.
    if role == 'writer':
        conn = sqlite3.connect(database, timeout=0)
    else:
        conn = sqlite3.connect(database, timeout=0, isolation_level=None)
    counts = {'pid': os.getpid(), 'ops': 0, 'locked': 0, 'other': 0, 'last_other': ''}

    def write():
        try:
            conn.execute('INSERT INTO events (at, source) VALUES (?, ?)', (time.time(), 'writer'))
            conn.commit()
        finally:
            if conn.in_transaction:
                conn.rollback()

    def report():
        try:
            conn.execute('BEGIN')
            conn.execute('SELECT count(*) FROM events').fetchone()
            time.sleep(HOLD)
            conn.execute('COMMIT')
        finally:
            if conn.in_transaction:
                conn.execute('ROLLBACK')

    def lookup():
        conn.execute('SELECT max(id) FROM events').fetchone()

    saved = 0.0
    while True:
        if role == 'writer':
            count(counts, write)
            time.sleep(WRITER_PAUSE)
        else:
            count(counts, report)
            for lookup_number in range(LOOKUPS):
                time.sleep(LOOKUP_PAUSE)
                count(counts, lookup)
        now = time.time()
        if now - saved >= 0.2:
            counts['at'] = now
            save(stats, counts)
            saved = now


if __name__ == '__main__':
    main()
