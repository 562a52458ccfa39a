"""tests/bench/topology_doc.py: the topology and fleet part of docs/benchmarks.md
is generated from the results file, and the doc in the repository is what the
file gives."""
from __future__ import absolute_import, division, print_function

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))

import topology_doc  # noqa: E402


def result(fleet):
    runs = [{'kind': 'migrate_node (the RW)', 'rc': 0, 'write_gap_s': 0.42, 'playbook_s': 50.1, 'acked': 900,
             'missing': 0, 'changed': 30}]
    return {'date': '2026-12-02', 'lab': 'lab', 'client': 'client', 'runs': runs,
            'summary': topology_doc.summarize(runs), 'fleet': fleet}


def test_the_fleet_figure_is_the_ratio_of_the_two_runs():
    fleet = [{'kind': 'one', 'clusters': 1, 'rc': 0, 'playbook_s': 60.0, 'changed': 90},
             {'kind': 'four', 'clusters': 4, 'rc': 0, 'playbook_s': 150.0, 'changed': 360}]
    assert topology_doc.fleet_ratio(fleet) == (4, 150.0, 60.0, 2.5)
    doc = topology_doc.updated('# Benchmarks\n', result(fleet))
    assert '| migrate_node (the RW) | 1 | 0.420 | 0.420 | 50.1 | 50.1 | 0 | 0 |' in doc
    assert 'Fleet: 4 clusters of 3 nodes created by one `fleet.yml` run in 150.0 s; one such cluster created ' \
           'alone in 60.0 s: 2.50 times as long (target: at most 2).' in doc
    # replaced in place the next time
    assert topology_doc.updated(doc, result(fleet)).count(topology_doc.BEGIN) == 1


def test_a_failed_fleet_run_gives_no_figure():
    fleet = [{'kind': 'one', 'clusters': 1, 'rc': 0, 'playbook_s': 60.0, 'changed': 90},
             {'kind': 'four', 'clusters': 4, 'rc': 2, 'playbook_s': 20.0, 'changed': 0}]
    assert topology_doc.fleet_ratio(fleet) is None
    assert 'Fleet: a run failed, no figure' in topology_doc.updated('# B\n', result(fleet))


def test_the_doc_is_current():
    assert topology_doc.main(['--check']) == 0
