"""The benchmark figures in docs/benchmarks.md, computed from the raw results.

    python tests/bench/benchmarks_doc.py            # rewrite the generated part of docs/benchmarks.md
    python tests/bench/benchmarks_doc.py --check    # exit 1 when it is not what the JSON gives

bench_ha.py writes docs/benchmarks/ha-results.json (every run) and calls
``summarize`` for its summary; this file turns the same runs into the tables and
the headline figures between the GENERATED markers of docs/benchmarks.md, so no
figure in the docs is typed by hand."""
import argparse
import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'ha-results.json')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
BEGIN = '<!-- GENERATED from benchmarks/ha-results.json by tests/bench/benchmarks_doc.py: do not edit by hand -->'
END = '<!-- END GENERATED -->'
WINDOW = re.compile(r'writes unavailable ([0-9.]+) s')


def module_window(run):
    """The critical section the switchover module itself reported (s), or None."""
    m = WINDOW.search(run.get('reported') or '')
    return float(m.group(1)) if m else None


def summarize(runs):
    """Per kind: counts, medians and maxima of the successful runs, and what was lost."""
    summary = {}
    for kind in ('switchover', 'failover'):
        all_runs = [r for r in runs if r['kind'] == kind]
        ok = [r for r in all_runs if r['rc'] == 0]
        if not ok:
            continue
        gaps = [r['write_unavailable_s'] for r in ok]
        s = {'runs': len(ok), 'failed_runs': len(all_runs) - len(ok),
             'write_unavailable_median_s': round(statistics.median(gaps), 4),
             'write_unavailable_max_s': max(gaps),
             'playbook_median_s': round(statistics.median(r['playbook_s'] for r in ok), 3),
             'missing_total': sum(r['missing'] for r in ok)}
        writable = [r['writable_after_s'] for r in ok if r.get('writable_after_s') is not None]
        if writable:
            s.update(writable_after_median_s=statistics.median(writable), writable_after_max_s=max(writable))
        first = [r['first_ack_after_start_s'] for r in ok if r.get('first_ack_after_start_s') is not None]
        if kind == 'failover' and first:
            s['client_first_ack_median_s'] = round(statistics.median(first), 3)
        summary[kind] = s
    return summary


def _f(value, digits):
    return '-' if value is None else '%.*f' % (digits, value)


def render(result):
    runs, summary = result['runs'], summarize(result['runs'])
    out = [BEGIN, '', 'Results of %s (%s).' % (result['date'][:10], result.get('lab') or 'the lab'), '']
    sw = [r for r in runs if r['kind'] == 'switchover']
    if sw:
        s = summary.get('switchover', {})
        out += ['## Switchover: `playbooks/switchover.yml`, %d runs' % len(sw), '',
                '| run | write unavailability (s) | module window (s) | playbook (s) | acknowledged | missing |',
                '| --- | --- | --- | --- | --- | --- |']
        for i, r in enumerate(sw, 1):
            gap = _f(r['write_unavailable_s'], 3) if r['rc'] == 0 else 'failed'
            cells = (i, gap, _f(module_window(r), 3), _f(r['playbook_s'], 1), r['acked'], r['missing'])
            out.append('| %d | %s | %s | %s | %d | %d |' % cells)
        if s:
            out += ['', '**Median write unavailability %.3f s, maximum %.3f s, %d acknowledged writes missing, '
                        '%d failed runs; median playbook %.1f s.**'
                    % (s['write_unavailable_median_s'], s['write_unavailable_max_s'], s['missing_total'],
                       s['failed_runs'], s['playbook_median_s'])]
    fo = [r for r in runs if r['kind'] == 'failover']
    if fo:
        s = summary.get('failover', {})
        out += ['', '## Failover: `playbooks/failover.yml` after the RW\'s host is powered off, %d runs' % len(fo), '',
                '| run | powered off | new RW writable after (s) | client\'s first write after (s) | playbook (s) '
                '| acknowledged | missing |',
                '| --- | --- | --- | --- | --- | --- | --- |']
        for i, r in enumerate(fo, 1):
            writable = _f(r.get('writable_after_s'), 1) if r['rc'] == 0 else 'failed'
            cells = (i, r.get('victim', '-'), writable, _f(r.get('first_ack_after_start_s'), 1),
                     _f(r['playbook_s'], 1), r['acked'], r['missing'])
            out.append('| %d | %s | %s | %s | %s | %d | %d |' % cells)
        if s:
            out += ['', '**Playbook start to a writable new RW: median %s s, at most %s s; the client\'s first '
                        'write a median %s s after the start; %d acknowledged writes missing, %d failed runs.**'
                    % (_f(s.get('writable_after_median_s'), 1), _f(s.get('writable_after_max_s'), 1),
                       _f(s.get('client_first_ack_median_s'), 1), s['missing_total'], s['failed_runs'])]
    return '\n'.join(out + ['', END])


def updated(doc, result):
    """``doc`` with its generated part replaced (ValueError without the markers)."""
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + render(result) + doc[end:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--check', action='store_true', help='only check that the doc is current')
    parser.add_argument('--results', default=RESULTS)
    parser.add_argument('--doc', default=DOC)
    args = parser.parse_args(argv)
    with open(args.results) as f:
        result = json.load(f)
    with open(args.doc) as f:
        doc = f.read()
    new = updated(doc, result)
    if args.check:
        if new != doc:
            print('%s is not what %s gives: run python tests/bench/benchmarks_doc.py' % (args.doc, args.results))
            return 1
        return 0
    with open(args.doc, 'w') as f:
        f.write(new)
    print('%s written from %s' % (args.doc, args.results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
