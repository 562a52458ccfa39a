"""tests/bench/ha_auto_doc.py: the automatic failover table of docs/benchmarks.md
is generated from the results file, and the doc in the repository is what the
file gives."""
from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))

import ha_auto_doc  # noqa: E402


def run(kind, rc=0, gap=8.0, detect=6.0, takeover=0.9, missing=0):
    return {'kind': kind, 'rc': rc, 'write_gap_s': gap, 'detect_s': detect, 'takeover_s': takeover, 'missing': missing}


def quiet(case, false_failovers=0):
    return {'kind': 'no_failover', 'case': case, 'false_failovers': false_failovers, 'missing': 0, 'watched_s': 30}


def test_summary_per_fault_and_the_quiet_cases():
    s = ha_auto_doc.summarize([run('poweroff', gap=8.0), run('poweroff', gap=9.0, detect=7.0), run('isolate', gap=6.5),
                               run('poweroff', rc=1, gap=60), quiet('agent_frozen'), quiet('rw_saturated', 1)])
    assert s['poweroff'] == {'runs': 3, 'failed': 1, 'gap_median_s': 8.5, 'gap_max_s': 9.0, 'detect_median_s': 6.5,
                             'takeover_median_s': 0.9, 'missing': 0}
    assert s['isolate']['runs'] == 1
    assert s['no_failover'] == {'cases': ['agent_frozen', 'rw_saturated'], 'false_failovers': 1, 'missing': 0}


def test_the_table_is_appended_once_then_replaced():
    runs = [run('poweroff', gap=8.25), quiet('controller_gone')]
    result = {'date': '2026-12-03', 'lab': 'lab', 'client': 'client', 'settings': 'ttl 6', 'runs': runs,
              'summary': ha_auto_doc.summarize(runs)}
    doc = ha_auto_doc.updated('# Benchmarks\n', result)
    assert '## Automatic failover' in doc and '| host powered off | 1 | 8.25 | 8.25 | 6.00 | 0.90 | 0 | 0 |' in doc
    assert 'controller gone): 0 false failover(s)' in doc
    result['summary']['poweroff']['missing'] = 2
    again = ha_auto_doc.updated(doc, result)
    assert again.count(ha_auto_doc.BEGIN) == 1 and '| 6.00 | 0.90 | 2 | 0 |' in again


def test_the_doc_is_current():
    assert ha_auto_doc.main(['--check']) == 0


def test_each_store_has_its_own_part():
    runs = [run('poweroff', gap=8.25)]
    etcd = {'date': 'd', 'lab': 'lab', 'client': 'c', 'settings': 's', 'runs': runs, 'summary': ha_auto_doc.summarize(runs)}
    k8s = dict(etcd, store='kubernetes', summary=ha_auto_doc.summarize([run('poweroff', gap=7.5)]))
    doc = ha_auto_doc.updated(ha_auto_doc.updated('# Benchmarks\n', etcd), k8s)
    assert '## Automatic failover on the Kubernetes API' in doc and "last report to the Kubernetes API" in doc
    assert '| 8.25 |' in doc and '| 7.50 |' in doc and doc.count(ha_auto_doc.BEGIN) == 1
    # the etcd part replaced leaves the other alone
    assert '| 7.50 |' in ha_auto_doc.updated(doc, etcd)


def test_the_kubernetes_part_of_the_doc_is_current():
    if os.path.exists(ha_auto_doc.RESULTS_K8S):
        assert ha_auto_doc.main(['--check', '--results', ha_auto_doc.RESULTS_K8S]) == 0
