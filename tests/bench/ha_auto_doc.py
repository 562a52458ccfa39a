"""The automatic failover parts of docs/benchmarks.md, generated from
docs/benchmarks/ha-auto-results.json (the manager on etcd) and
ha-auto-k8s-results.json (on the Kubernetes API, --results), both written by
bench_ha_auto.py: per fault
(power-off, isolation) the runs, the write unavailability (host lost -> first
acknowledged write on the new RW), the manager's detection and take-over times,
acknowledged writes missing; then the cases that must not fail over."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'ha-auto-results.json')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
sys.path.insert(0, HERE)
from benchmarks_doc import _f, _median, cli  # noqa: E402  pylint: disable=wrong-import-position
from day2_doc import replaced  # noqa: E402  pylint: disable=wrong-import-position
BEGIN = '<!-- GENERATED from benchmarks/ha-auto-results.json by tests/bench/ha_auto_doc.py: do not edit by hand -->'
END = '<!-- END GENERATED ha-auto -->'
RESULTS_K8S = os.path.join(ROOT, 'docs', 'benchmarks', 'ha-auto-k8s-results.json')
# per store: the markers of its part and the heading it goes under when new
PARTS = {
    'etcd': (BEGIN, END, '## Automatic failover (`make bench-ha-auto`)'),
    'kubernetes': ('<!-- GENERATED from benchmarks/ha-auto-k8s-results.json by tests/bench/ha_auto_doc.py: '
                   'do not edit by hand -->', '<!-- END GENERATED ha-auto-k8s -->',
                   '## Automatic failover on the Kubernetes API (`make bench-ha-auto STORE=kubernetes`)'),
}
STORE_NAMES = {'etcd': 'etcd', 'kubernetes': 'the Kubernetes API'}
FAULTS = ('poweroff', 'isolate')


def summarize(runs):
    """{fault: {runs, failed, gap_median_s, gap_max_s, detect_median_s, takeover_median_s, missing}},
    and no_failover: {cases, false_failovers, missing}."""
    summary = {}
    for fault in FAULTS:
        rs = [r for r in runs if r['kind'] == fault]
        if not rs:
            continue
        ok = [r for r in rs if r['rc'] == 0]
        summary[fault] = {
            'runs': len(rs),
            'failed': len(rs) - len(ok),
            'gap_median_s': _median([r['write_gap_s'] for r in ok]),
            'gap_max_s': max([r['write_gap_s'] for r in ok], default=None),
            'detect_median_s': _median([r.get('detect_s') for r in ok]),
            'takeover_median_s': _median([r.get('takeover_s') for r in ok]),
            'missing': sum(r['missing'] for r in rs),
        }
    quiet = [r for r in runs if r['kind'] == 'no_failover']
    if quiet:
        summary['no_failover'] = {'cases': [r['case'] for r in quiet],
                                  'false_failovers': sum(r['false_failovers'] for r in quiet),
                                  'missing': sum(r['missing'] for r in quiet)}
    return summary


def render(result):
    s = result['summary']
    store = result.get('store', 'etcd')
    lines = [PARTS[store][0], '',
             'Measured %s on the lab (%s); client: %s; %s. No playbook runs during a failover.'
             % (result['date'], result['lab'], result['client'], result['settings']), '',
             '| fault of the RW | runs | unavailable median (s) | unavailable max (s) | detection median (s) '
             '| take-over median (s) | missing | failed |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    names = {'poweroff': 'host powered off', 'isolate': 'host cut off the network'}
    for fault in FAULTS:
        if fault in s:
            f = s[fault]
            lines.append('| %s | %d | %s | %s | %s | %s | %d | %d |' % (
                names[fault], f['runs'], _f(f['gap_median_s'], 2), _f(f['gap_max_s'], 2),
                _f(f['detect_median_s'], 2), _f(f['takeover_median_s'], 2), f['missing'], f['failed']))
    lines += ['', '*Unavailable*: the longest time between two acknowledged writes of the client (host lost -> '
                  'first acknowledged write on the new RW). *Detection*: the old RW\'s last report to %s -> '
                  'the manager\'s decision. *Take-over*: decision -> promoted (fence and promote on the new RW).'
              % STORE_NAMES[store]]
    if 'no_failover' in s:
        q = s['no_failover']
        lines += ['', 'Must not fail over, each watched %s s with the client writing (%s): %d false failover(s), '
                      '%d acknowledged write(s) missing.'
                  % (next((r['watched_s'] for r in result['runs'] if r['kind'] == 'no_failover'), '?'),
                     ', '.join(c.replace('_', ' ') for c in q['cases']), q['false_failovers'], q['missing'])]
    lines += ['', PARTS[store][1]]
    return '\n'.join(lines)


def updated(doc, result):
    """``doc`` with the generated automatic failover part of the result's store replaced, or appended under a heading."""
    begin, end, heading = PARTS[result.get('store', 'etcd')]
    return replaced(doc, render(result), begin, end, heading)


def main(argv=None):
    return cli(argv, __doc__.split('\n', maxsplit=1)[0], RESULTS, DOC, updated, 'ha_auto_doc.py')


if __name__ == '__main__':
    sys.exit(main())
