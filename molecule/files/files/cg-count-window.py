"""Counts what workloads did over a window of time.

cg-count-window.py SECONDS STATS...

Reads each workload's cumulative counts (JSON), waits SECONDS, reads them
again, and prints one JSON object: for each STATS file (by its base name
without .json), the growth of every count, and whether the same process
wrote both readings.
"""
import json
import os
import sys
import time


def read(paths):
    readings = {}
    for path in paths:
        with open(path) as stream:
            readings[os.path.basename(path)[:-len('.json')]] = json.load(stream)
    return readings


def main():
    seconds, paths = float(sys.argv[1]), sys.argv[2:]
    first = read(paths)
    time.sleep(seconds)
    second = read(paths)
    window = {}
    for name, before in first.items():
        after = second[name]
        counts = {key: after[key] - before[key] for key in after
                  if key not in ('pid', 'at') and isinstance(after[key], int)}
        counts['same_pid'] = after['pid'] == before['pid']
        counts['fresh'] = after['at'] - before['at'] >= seconds - 1
        counts['last_other'] = after.get('last_other', '')
        window[name] = counts
    json.dump({'seconds': seconds, 'counts': window}, sys.stdout, sort_keys=True)


if __name__ == '__main__':
    main()
