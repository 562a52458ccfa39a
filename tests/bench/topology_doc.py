"""The day-2 topology part of docs/benchmarks.md, generated from
docs/benchmarks/topology-results.json (written by bench_topology.py): per
operation the runs, the write unavailability and the playbook's wall time,
acknowledged writes missing, failed runs; then the fleet figure (N clusters
created by one fleet run against one cluster created alone)."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'topology-results.json')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
sys.path.insert(0, HERE)
from benchmarks_doc import _f, cli  # noqa: E402  pylint: disable=wrong-import-position
from day2_doc import operations_table, replaced, summarize  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
BEGIN = '<!-- GENERATED from benchmarks/topology-results.json by tests/bench/topology_doc.py: do not edit by hand -->'
END = '<!-- END GENERATED topology -->'


def fleet_ratio(fleet):
    """(N, seconds of the fleet run, seconds of one cluster, ratio), or None when a run failed."""
    one = [r for r in fleet if r['clusters'] == 1]
    many = [r for r in fleet if r['clusters'] > 1]
    if not one or not many or one[0]['rc'] != 0 or many[0]['rc'] != 0:
        return None
    return many[0]['clusters'], many[0]['playbook_s'], one[0]['playbook_s'], \
        round(many[0]['playbook_s'] / one[0]['playbook_s'], 2)


def render(result):
    lines = [BEGIN, '',
             'Measured %s on the lab (%s); client: %s.' % (result['date'], result['lab'], result['client']), '']
    lines += operations_table(result['summary'])
    lines += ['', 'Expected: no write unavailability beyond the client\'s pace for add, remove, expand and the '
                  'migration of a replica; one switchover\'s gap for the migration of the RW.', '']
    ratio = fleet_ratio(result.get('fleet') or [])
    if ratio:
        count, many, one, times = ratio
        figures = (count, _f(many, 1), _f(one, 1), _f(times, 2))
        lines.append('Fleet: %d clusters of 3 nodes created by one `fleet.yml` run in %s s; one such cluster created '
                     'alone in %s s: %s times as long (target: at most 2).' % figures)
    else:
        lines.append('Fleet: a run failed, no figure: %s' % result.get('fleet'))
    lines += ['', END]
    return '\n'.join(lines)


def updated(doc, result):
    """``doc`` with its generated topology part replaced, or appended under a heading."""
    return replaced(doc, render(result), BEGIN, END, '## Day-2 topology and fleet runs (`make bench-day2`)')


def main(argv=None):
    return cli(argv, __doc__.split('\n', maxsplit=1)[0], RESULTS, DOC, updated, 'topology_doc.py')


if __name__ == '__main__':
    sys.exit(main())
