"""The Kubernetes part of docs/benchmarks.md, generated from
docs/benchmarks/k8s-results.json (written by bench_k8s.py): the control
plane's start from cached binaries, a declared cluster to phase Running, a new
cluster created and deleted by reconcile, the reconcile of a converged cluster, and a switchover asked by a new spec.primary."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RESULTS = os.path.join(ROOT, 'docs', 'benchmarks', 'k8s-results.json')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
sys.path.insert(0, HERE)
from benchmarks_doc import _f, _median, cli  # noqa: E402  pylint: disable=wrong-import-position
from day2_doc import replaced  # noqa: E402  pylint: disable=wrong-import-position
BEGIN = '<!-- GENERATED from benchmarks/k8s-results.json by tests/bench/k8s_doc.py: do not edit by hand -->'
END = '<!-- END GENERATED k8s -->'
KINDS = ('control_plane_start', 'declared_to_running', 'created_to_running', 'deleted_to_gone', 'noop_reconcile', 'switchover')


def summarize(runs):
    """Per kind of run: count, median and max seconds; and what the no-op reconciles wrote, what switchovers lost."""
    summary = {}
    for kind in KINDS:
        rs = [r for r in runs if r['kind'] == kind]
        if not rs:
            continue
        s = dict(runs=len(rs), median_s=_median([r['seconds'] for r in rs]), max_s=max(r['seconds'] for r in rs))
        if kind == 'noop_reconcile':
            s['changed'] = sorted(set(r['changed'] for r in rs))
            s['status_written'] = sorted(set(k for r in rs for k in r['status_written']))
            s['spec_unchanged'] = all(r['spec_unchanged'] for r in rs)
        if kind == 'created_to_running':
            s['running'] = sum(1 for r in rs if r['phase'] == 'Running')
        if kind == 'deleted_to_gone':
            s['gone'] = sum(1 for r in rs if r['gone'])
        if kind == 'switchover':
            s['gap_median_s'] = _median([r['write_gap_s'] for r in rs])
            s['gap_max_s'] = max(r['write_gap_s'] for r in rs)
            s['missing'] = sum(r['missing'] for r in rs)
            s['rw_as_wanted'] = sum(1 for r in rs if r['rw'] == r['wanted'])
        summary[kind] = s
    return summary


def render(result):
    s = result['summary']
    lines = [BEGIN, '', 'Measured %s on the lab (%s); %s; client: %s.'
             % (result['date'], result['lab'], result['control_plane'], result['client']), '',
             '| what | runs | median (s) | max (s) | notes |', '| --- | --- | --- | --- | --- |']
    names = dict(control_plane_start='control plane start from cached binaries (to /readyz and the default namespace)',
                 declared_to_running='a running cluster declared -> phase Running (the module, then one reconcile)',
                 created_to_running='a new 2-node cluster declared on blank LUNs -> phase Running (one reconcile creates it)',
                 deleted_to_gone='that cluster deleted -> gone from the API (one reconcile removes its engines, '
                                 'deletionPolicy Wipe)',
                 noop_reconcile='reconcile of a converged cluster',
                 switchover='switchover asked by a new spec.primary (one reconcile)')
    for kind in KINDS:
        if kind not in s:
            continue
        k = s[kind]
        note = ''
        if kind == 'noop_reconcile':
            note = ('changed=%s; status fields that changed: %s; spec untouched: %s; besides, the Lease is created '
                    'and deleted') % (','.join(str(c) for c in k['changed']), ', '.join(k['status_written']) or 'none',
                                      'yes' if k['spec_unchanged'] else 'NO')
        if kind == 'created_to_running':
            note = 'phase Running in %d of %d' % (k['running'], k['runs'])
        if kind == 'deleted_to_gone':
            note = 'gone in %d of %d' % (k['gone'], k['runs'])
        if kind == 'switchover':
            note = 'write gap median %s s, max %s s; %d acknowledged writes missing; RW as asked in %d of %d' % (
                _f(k['gap_median_s'], 3), _f(k['gap_max_s'], 3), k['missing'], k['rw_as_wanted'], k['runs'])
        lines.append('| %s | %d | %s | %s | %s |' % (names[kind], k['runs'], _f(k['median_s'], 2), _f(k['max_s'], 2), note))
    lines += ['', END]
    return '\n'.join(lines)


def updated(doc, result):
    return replaced(doc, render(result), BEGIN, END, '## Kubernetes (`make bench-k8s`)')


def main(argv=None):
    return cli(argv, __doc__.split('\n', maxsplit=1)[0], RESULTS, DOC, updated, 'k8s_doc.py')


if __name__ == '__main__':
    sys.exit(main())
