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


MODULE_PHASES = ('checkpoint_s', 'precatchup_s', 'stop_s', 'controldata_s', 'catchup_s', 'promote_s',
                 'write_unavailable_s')
COLUMN = {'switchover': 'idle', 'switchover_under_load': 'under load', 'switchover_sync': 'idle, synchronous'}
COMMAND_PHASES = ('startup', 'discovery', 'checks', 'lock', 'critical_section', 'rejoin', 'waits', 'other')


def group(run):
    """The summary a run counts in: switchover (idle), switchover_under_load, switchover_sync
    (idle, synchronous replication), failover."""
    if run['kind'] == 'switchover' and run.get('load', 'idle') != 'idle':
        return 'switchover_under_load'
    if run['kind'] == 'switchover' and run.get('replication') == 'synchronous':
        return 'switchover_sync'
    return run['kind']


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 4) if values else None


def summarize(runs):
    """Per group: counts, medians and maxima of the successful runs, and what was lost."""
    summary = {}
    for name in ('switchover', 'switchover_under_load', 'switchover_sync', 'failover'):
        all_runs = [r for r in runs if group(r) == name]
        ok = [r for r in all_runs if r['rc'] == 0]
        if not ok:
            continue
        gaps = [r['write_unavailable_s'] for r in ok]
        s = {'runs': len(ok), 'failed_runs': len(all_runs) - len(ok),
             'write_unavailable_median_s': round(statistics.median(gaps), 4),
             'write_unavailable_max_s': max(gaps),
             'playbook_median_s': round(statistics.median(r['playbook_s'] for r in ok), 3),
             'missing_total': sum(r['missing'] for r in ok)}
        if name == 'switchover_under_load':
            s['load'] = ok[0].get('load')
            s['load_tps_median'] = _median(r.get('load_tps') for r in ok)
        writable = [r['writable_after_s'] for r in ok if r.get('writable_after_s') is not None]
        if writable:
            s.update(writable_after_median_s=statistics.median(writable), writable_after_max_s=max(writable))
        first = [r['first_ack_after_start_s'] for r in ok if r.get('first_ack_after_start_s') is not None]
        if name == 'failover' and first:
            s['client_first_ack_median_s'] = round(statistics.median(first), 3)
        if any(r.get('module') for r in ok):
            s['module_median_s'] = {k: _median((r.get('module') or {}).get(k) for r in ok) for k in MODULE_PHASES}
        if any(r.get('phases') for r in ok):
            s['phases_median_s'] = {k: _median((r.get('phases') or {}).get(k) for r in ok) for k in COMMAND_PHASES}
        summary[name] = s
    converges = [r for r in runs if r['kind'] == 'converge']
    ok = [r for r in converges if r['rc'] == 0]
    if ok:
        summary['converge'] = {'runs': len(ok), 'failed_runs': len(converges) - len(ok),
                               'playbook_median_s': round(statistics.median(r['playbook_s'] for r in ok), 3),
                               'playbook_max_s': max(r['playbook_s'] for r in ok),
                               'changed_max': max(r['changed'] for r in ok)}
    return summary


def _f(value, digits):
    return '-' if value is None else '%.*f' % (digits, value)


def _segments(runs):
    """', WAL segments of 4 MB' from the runs (runs before it was recorded: 16, the only size then)."""
    sizes = sorted(set(r.get('wal_segment_mb', 16) for r in runs))
    return ', WAL segments of %s MB' % ' and '.join(str(v) for v in sizes)


def _switchover_table(title, sw, s, loaded):
    out = ['## %s%s, %d runs' % (title, _segments(sw), len(sw)), '',
           '| run |%s write unavailability (s) | module window (s) | stop / replay / promote (s) | playbook (s) '
           '| acknowledged | missing |' % (' load (tps) |' if loaded else ''),
           '| --- |%s --- | --- | --- | --- | --- | --- |' % (' --- |' if loaded else '')]
    for i, r in enumerate(sw, 1):
        gap = _f(r['write_unavailable_s'], 3) if r['rc'] == 0 else 'failed'
        m = r.get('module') or {}
        window = m.get('write_unavailable_s', module_window(r))
        split = ' / '.join(_f(m.get(k), 3) for k in ('stop_s', 'catchup_s', 'promote_s')) if m else '-'
        load = (' %s |' % _f(r.get('load_tps'), 0)) if loaded else ''
        out.append('| %d |%s %s | %s | %s | %s | %d | %d |' % (
            i, load, gap, _f(window, 3), split, _f(r['playbook_s'], 1), r['acked'], r['missing']))
    if s:
        out += ['', '**Median write unavailability %.3f s, maximum %.3f s, %d acknowledged writes missing, '
                    '%d failed runs; median playbook %.1f s.**'
                % (s['write_unavailable_median_s'], s['write_unavailable_max_s'], s['missing_total'],
                   s['failed_runs'], s['playbook_median_s'])]
    return out


def _phase_table(summary):
    cols = [(n, summary[n]) for n in ('switchover', 'switchover_under_load', 'switchover_sync') if n in summary]
    if not any(s.get('module_median_s') or s.get('phases_median_s') for name, s in cols):
        return []
    out = ['', '## Where a switchover\'s time goes (medians, seconds)', '',
           '| phase |%s' % ''.join(' %s |' % COLUMN[n] for n, s in cols),
           '| --- |%s' % (' --- |' * len(cols))]
    for k in MODULE_PHASES:
        cells = ''.join(' %s |' % _f((s.get('module_median_s') or {}).get(k), 3) for name, s in cols)
        out.append('| module: %s |%s' % (k[:-2].replace('_', ' '), cells))
    for k in COMMAND_PHASES:
        cells = ''.join(' %s |' % _f((s.get('phases_median_s') or {}).get(k), 2) for name, s in cols)
        out.append('| playbook: %s |%s' % (k.replace('_', ' '), cells))
    out.append('| playbook: wall time |%s' % ''.join(' %s |' % _f(s['playbook_median_s'], 2) for name, s in cols))
    return out


def render(result):
    runs, summary = result['runs'], summarize(result['runs'])
    dates = sorted(set(r.get('measured', result['date'][:10]) for r in runs)) or [result['date'][:10]]
    when = 'of ' + dates[0] if len(dates) == 1 else 'measured between %s and %s' % (dates[0], dates[-1])
    out = [BEGIN, '', 'Results %s (%s).' % (when, result.get('lab') or 'the lab'), '']
    idle = [r for r in runs if group(r) == 'switchover']
    if idle:
        out += _switchover_table('Switchover: `playbooks/switchover.yml`, idle', idle, summary.get('switchover'), False)
    loaded = [r for r in runs if group(r) == 'switchover_under_load']
    if loaded:
        s = summary.get('switchover_under_load')
        out += [''] + _switchover_table('Switchover under load (%s)' % loaded[0].get('load'), loaded, s, True)
    sync = [r for r in runs if group(r) == 'switchover_sync']
    if sync:
        out += [''] + _switchover_table('Switchover with synchronous replication (a quorum of one replica), idle', sync,
                                        summary.get('switchover_sync'), False)
    out += _phase_table(summary)
    cv = [r for r in runs if r['kind'] == 'converge']
    if cv:
        s = summary.get('converge')
        out += ['', '## create_cluster re-run on the converged cluster, %d runs' % len(cv), '',
                '| run | playbook (s) | changed | tasks run | startup (s) |', '| --- | --- | --- | --- | --- |']
        for i, r in enumerate(cv, 1):
            out.append('| %d | %s | %s | %s | %s |' % (
                i, _f(r['playbook_s'], 1) if r['rc'] == 0 else 'failed', r.get('changed', '-'), r.get('tasks', '-'),
                _f((r.get('phases') or {}).get('startup'), 1)))
        if s:
            out += ['', '**Median %.1f s, at most %.1f s; changed at most %d.**'
                    % (s['playbook_median_s'], s['playbook_max_s'], s['changed_max'])]
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


def cli(argv, description, results, doc, updated_fn, script):
    """The command line of a doc generator: write ``doc`` from ``results``, or --check it."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--check', action='store_true', help='only check that the doc is current')
    parser.add_argument('--results', default=results)
    parser.add_argument('--doc', default=doc)
    args = parser.parse_args(argv)
    with open(args.results) as f:
        result = json.load(f)
    with open(args.doc) as f:
        text = f.read()
    new = updated_fn(text, result)
    if args.check:
        if new != text:
            print('%s is not what %s gives: run python tests/bench/%s' % (args.doc, args.results, script))
            return 1
        return 0
    with open(args.doc, 'w') as f:
        f.write(new)
    print('%s written from %s' % (args.doc, args.results))
    return 0


def main(argv=None):
    return cli(argv, __doc__.split('\n', maxsplit=1)[0], RESULTS, DOC, updated, 'benchmarks_doc.py')


if __name__ == '__main__':
    sys.exit(main())
