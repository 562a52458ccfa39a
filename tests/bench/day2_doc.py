"""The day-2 part of docs/benchmarks.md, generated from
docs/benchmarks/day2-results.json (written by bench_day2.py): per operation the
runs, the write unavailability and the playbook's wall time (median and
maximum), acknowledged writes missing, failed runs."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'day2-results.json')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
sys.path.insert(0, HERE)
from benchmarks_doc import _f, _median, cli  # noqa: E402  pylint: disable=wrong-import-position
BEGIN = '<!-- GENERATED from benchmarks/day2-results.json by tests/bench/day2_doc.py: do not edit by hand -->'
END = '<!-- END GENERATED day2 -->'


def summarize(runs):
    """{kind: {runs, failed, gap_median_s, gap_max_s, playbook_median_s, playbook_max_s, missing, changed_max}},
    kinds in the order they first ran."""
    out = {}
    for r in runs:
        out.setdefault(r['kind'], []).append(r)
    summary = {}
    for kind, rs in out.items():
        ok = [r for r in rs if r['rc'] == 0]
        summary[kind] = {
            'runs': len(rs),
            'failed': len(rs) - len(ok),
            'gap_median_s': _median([r['write_gap_s'] for r in ok]),
            'gap_max_s': max([r['write_gap_s'] for r in ok], default=None),
            'playbook_median_s': _median([r['playbook_s'] for r in ok]),
            'playbook_max_s': max([r['playbook_s'] for r in ok], default=None),
            'missing': sum(r['missing'] for r in rs),
            'changed_max': max([r['changed'] for r in ok], default=None),
        }
    return summary


def operations_table(summary):
    """The markdown table of a summary (kinds in order): write gap and wall time per operation."""
    lines = ['| operation | runs | write gap median (s) | write gap max (s) | playbook median (s) | playbook max (s) '
             '| missing | failed |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for kind, s in summary.items():
        lines.append('| %s | %d | %s | %s | %s | %s | %d | %d |' % (
            kind, s['runs'], _f(s['gap_median_s'], 3), _f(s['gap_max_s'], 3), _f(s['playbook_median_s'], 1),
            _f(s['playbook_max_s'], 1), s['missing'], s['failed']))
    return lines


def render(result):
    lines = [BEGIN, '',
             'Measured %s on the lab (%s); client: %s. Minor versions %s and %s.'
             % (result['date'], result['lab'], result['client'], result['versions']['older'],
                result['versions']['newer']), '']
    lines += operations_table(result['summary'])
    lines += ['', 'The write gap is the longest time between two acknowledged writes of the client during the run: '
                  'with no RW restart it is the client\'s own pace and the lab\'s jitter.', '', END]
    return '\n'.join(lines)


def replaced(doc, text, begin, end, heading):
    """``doc`` with its part from ``begin`` to ``end`` replaced by ``text``, or ``text`` appended under ``heading``."""
    if begin in doc:
        start, stop = doc.index(begin), doc.index(end) + len(end)
        return doc[:start] + text + doc[stop:]
    return doc.rstrip('\n') + '\n\n' + heading + '\n\n' + text + '\n'


def updated(doc, result):
    """``doc`` with its generated day-2 part replaced, or appended under a heading."""
    return replaced(doc, render(result), BEGIN, END, '## Day-2 operations (`make bench-day2`)')


def main(argv=None):
    return cli(argv, __doc__.split('\n', maxsplit=1)[0], RESULTS, DOC, updated, 'day2_doc.py')


if __name__ == '__main__':
    sys.exit(main())
