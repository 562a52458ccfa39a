"""tests/bench/day2_doc.py: the day-2 table of docs/benchmarks.md is generated
from the results file, and the doc in the repository is what the file gives."""
from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))

import day2_doc  # noqa: E402


def run(kind, rc=0, gap=0.01, wall=10.0, missing=0, changed=0):
    return {'kind': kind, 'rc': rc, 'write_gap_s': gap, 'playbook_s': wall, 'acked': 100, 'missing': missing,
            'changed': changed}


def test_summary_per_operation_in_the_order_they_ran():
    s = day2_doc.summarize([run('b', gap=0.2, wall=30), run('a'), run('b', gap=0.4, wall=50), run('b', rc=2, gap=9)])
    assert list(s) == ['b', 'a']
    assert s['b'] == {'runs': 3, 'failed': 1, 'gap_median_s': 0.3, 'gap_max_s': 0.4,
                      'playbook_median_s': 40.0, 'playbook_max_s': 50, 'missing': 0, 'changed_max': 0}


def test_the_table_is_appended_once_then_replaced():
    result = {'date': '2026-12-02', 'lab': 'lab', 'client': 'client', 'versions': {'older': '1', 'newer': '2'},
              'summary': day2_doc.summarize([run('reload', gap=0.012, wall=14.25, changed=3)])}
    doc = day2_doc.updated('# Benchmarks\n', result)
    assert '## Day-2 operations' in doc and '| reload | 1 | 0.012 | 0.012 | 14.2 | 14.2 | 0 | 0 |' in doc
    result['summary']['reload']['missing'] = 5
    again = day2_doc.updated(doc, result)
    assert again.count(day2_doc.BEGIN) == 1 and '| reload | 1 | 0.012 | 0.012 | 14.2 | 14.2 | 5 | 0 |' in again


def test_the_doc_is_current():
    assert day2_doc.main(['--check']) == 0
