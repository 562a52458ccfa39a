"""tests/bench/k8s_doc.py: the Kubernetes table of docs/benchmarks.md is
generated from the results file (and, once the benchmark ran, the doc in the
repository is what the file gives)."""
from __future__ import absolute_import, division, print_function

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))

import k8s_doc  # noqa: E402

RUNS = [dict(kind='control_plane_start', seconds=3.4), dict(kind='control_plane_start', seconds=4.0),
        dict(kind='declared_to_running', seconds=12.0, reconcile_s=9.5, phase='Running'),
        dict(kind='noop_reconcile', seconds=8.0, changed=0, status_written=['heartbeat'], spec_unchanged=True),
        dict(kind='noop_reconcile', seconds=9.0, changed=0, status_written=['heartbeat'], spec_unchanged=True),
        dict(kind='switchover', seconds=20.0, write_gap_s=0.25, rw='pdb2', wanted='pdb2', missing=0),
        dict(kind='switchover', seconds=22.0, write_gap_s=0.35, rw='pdb3', wanted='pdb1', missing=1)]


def test_summary_per_kind():
    s = k8s_doc.summarize(RUNS)
    assert s['control_plane_start'] == dict(runs=2, median_s=3.7, max_s=4.0)
    assert s['noop_reconcile']['changed'] == [0] and s['noop_reconcile']['status_written'] == ['heartbeat']
    assert s['switchover']['gap_max_s'] == 0.35 and s['switchover']['missing'] == 1 and s['switchover']['rw_as_wanted'] == 1


def test_the_table_is_appended_once_then_replaced():
    result = dict(date='2026-12-03', lab='lab', control_plane='k8s', client='client', runs=RUNS,
                  summary=k8s_doc.summarize(RUNS))
    doc = k8s_doc.updated('# Benchmarks\n', result)
    assert '## Kubernetes (`make bench-k8s`)' in doc
    assert '| reconcile of a converged cluster | 2 | 8.50 | 9.00 | changed=0; status fields that changed: heartbeat; spec untouched: yes;' in doc
    assert '1 acknowledged writes missing; RW as asked in 1 of 2 |' in doc
    assert k8s_doc.updated(doc, result).count(k8s_doc.BEGIN) == 1


def test_the_doc_is_current():
    if not os.path.exists(k8s_doc.RESULTS):
        pytest.skip('make bench-k8s has not run yet: no %s' % k8s_doc.RESULTS)
    assert k8s_doc.main(['--check']) == 0


def test_creations_and_deletions_are_counted_and_rendered():
    runs = RUNS + [dict(kind='created_to_running', seconds=40.0, reconcile_s=35.0, phase='Running'),
                   dict(kind='created_to_running', seconds=44.0, reconcile_s=39.0, phase='Failed'),
                   dict(kind='deleted_to_gone', seconds=16.0, reconcile_s=15.0, gone=True)]
    s = k8s_doc.summarize(runs)
    assert s['created_to_running'] == dict(runs=2, median_s=42.0, max_s=44.0, running=1)
    assert s['deleted_to_gone'] == dict(runs=1, median_s=16.0, max_s=16.0, gone=1)
    table = k8s_doc.render(dict(summary=s, date='d', lab='l', control_plane='c', client='w'))
    assert '| a new 2-node cluster declared on blank LUNs -> phase Running (one reconcile creates it) | 2 | 42.00 | 44.00 | ' \
        'phase Running in 1 of 2 |' in table
    assert 'gone in 1 of 1' in table
