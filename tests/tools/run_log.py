"""Where the integration tests' time goes: sums up $POLARDB_RUN_LOG (one JSON line
per playbook run, written by tests/integration/labtools.log_run) per playbook and
per test, slowest first. Usage: tests/tools/run_log.py build/integration-runs.jsonl"""
import collections
import json
import sys


def main(path, top=25):
    with open(path) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    total = sum(r['seconds'] for r in runs)
    print('%d playbook runs, %.0f s in all' % (len(runs), total))
    for key, title in (('playbook', 'per playbook'), ('test', 'per test (top %d)' % top)):
        sums = collections.defaultdict(lambda: [0, 0.0])
        for r in runs:
            sums[r[key]][0] += 1
            sums[r[key]][1] += r['seconds']
        print('\n%s: runs, seconds' % title)
        for name, (n, s) in sorted(sums.items(), key=lambda kv: -kv[1][1])[:top]:
            print('%5d %8.1f  %s' % (n, s, name))


if __name__ == '__main__':
    main(sys.argv[1])
