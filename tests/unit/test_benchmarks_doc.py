"""docs/benchmarks.md shows what docs/benchmarks/ha-results.json holds, computed by code."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench'))

import benchmarks_doc  # noqa: E402


def run(kind, gap, rc=0, missing=0, **extra):
    return dict(kind=kind, rc=rc, write_unavailable_s=gap, playbook_s=10.0, acked=100, missing=missing, **extra)


def test_the_doc_is_generated_from_the_results():
    assert benchmarks_doc.main(['--check']) == 0


def test_summary_counts_failed_runs_apart_and_sums_what_was_lost():
    s = benchmarks_doc.summarize([
        run('switchover', 0.1), run('switchover', 0.3, missing=2), run('switchover', 9.0, rc=2),
        run('failover', 12.0, writable_after_s=7.0, first_ack_after_start_s=11.0),
        run('failover', 13.0, writable_after_s=8.0, first_ack_after_start_s=12.0)])
    assert s['switchover'] == {'runs': 2, 'failed_runs': 1, 'write_unavailable_median_s': 0.2,
                               'write_unavailable_max_s': 0.3, 'playbook_median_s': 10.0, 'missing_total': 2}
    assert s['failover']['writable_after_median_s'] == 7.5 and s['failover']['writable_after_max_s'] == 8.0
    assert s['failover']['client_first_ack_median_s'] == 11.5


def test_a_stale_doc_is_found_and_rewritten(tmp_path):
    doc = tmp_path / 'b.md'
    doc.write_text('intro\n%s\nold table\n%s\noutro\n' % (benchmarks_doc.BEGIN, benchmarks_doc.END))
    assert benchmarks_doc.main(['--check', '--doc', str(doc)]) == 1
    assert benchmarks_doc.main(['--doc', str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith('intro\n') and text.endswith('\noutro\n') and 'old table' not in text
    assert '| 1 | ' in text and benchmarks_doc.main(['--check', '--doc', str(doc)]) == 0


def test_a_doc_without_markers_is_an_error(tmp_path):
    doc = tmp_path / 'b.md'
    doc.write_text('no markers\n')
    with pytest.raises(ValueError):
        benchmarks_doc.main(['--doc', str(doc)])


def test_loaded_runs_are_summarised_apart_with_their_phases():
    module = {'checkpoint_s': 0.03, 'precatchup_s': 0.01, 'stop_s': 0.07, 'controldata_s': 0.01,
              'catchup_s': 0.002, 'promote_s': 0.04, 'write_unavailable_s': 0.12}
    phases = {'startup': 2.0, 'discovery': 1.0, 'checks': 1.5, 'lock': 2.5, 'critical_section': 1.2,
              'rejoin': 1.8, 'waits': 0.7, 'other': 0.3}
    runs = [run('switchover', 0.1), run('switchover', 0.2, load='pgbench', load_tps=398.0, module=module,
                                        phases=phases),
            run('switchover', 0.4, load='pgbench', load_tps=402.0, module=dict(module, stop_s=0.2),
                phases=phases)]
    s = benchmarks_doc.summarize(runs)
    assert s['switchover']['runs'] == 1 and 'module_median_s' not in s['switchover']
    loaded = s['switchover_under_load']
    assert loaded['runs'] == 2 and loaded['write_unavailable_max_s'] == 0.4 and loaded['load_tps_median'] == 400.0
    assert loaded['module_median_s']['stop_s'] == 0.135 and loaded['phases_median_s']['lock'] == 2.5
    text = benchmarks_doc.render({'date': '2026-12-02T00:00:00', 'runs': runs})
    assert '## Switchover under load (pgbench), WAL segments of 16 MB, 2 runs' in text
    assert '| module: stop | - | 0.135 |' in text and '| playbook: lock | - | 2.50 |' in text


def test_the_wal_segment_size_of_the_runs_is_in_each_title():
    runs = [run('switchover', 0.1, wal_segment_mb=4), run('switchover', 0.2, wal_segment_mb=4),
            run('switchover', 0.3, load='pgbench', wal_segment_mb=4), run('switchover', 0.4, load='pgbench')]
    text = benchmarks_doc.render({'date': '2026-12-05T00:00:00', 'runs': runs})
    assert '## Switchover: `playbooks/switchover.yml`, idle, WAL segments of 4 MB, 2 runs' in text
    assert '## Switchover under load (pgbench), WAL segments of 4 and 16 MB, 2 runs' in text


def test_converge_runs_are_summarised():
    runs = [dict(kind='converge', rc=0, playbook_s=38.0, changed=0, tasks=200, phases={'startup': 2.0}),
            dict(kind='converge', rc=0, playbook_s=40.0, changed=1, tasks=201, phases={'startup': 2.1}),
            dict(kind='converge', rc=2, playbook_s=5.0, changed=0, tasks=3)]
    s = benchmarks_doc.summarize(runs)['converge']
    assert s == {'runs': 2, 'failed_runs': 1, 'playbook_median_s': 39.0, 'playbook_max_s': 40.0, 'changed_max': 1}
    text = benchmarks_doc.render({'date': '2026-12-02T00:00:00', 'runs': runs})
    assert '| 1 | 38.0 | 0 | 200 | 2.0 |' in text and '| 3 | failed |' in text
    assert '**Median 39.0 s, at most 40.0 s; changed at most 1.**' in text


def test_synchronous_runs_are_summarised_and_shown_apart():
    runs = [run('switchover', 0.1), run('switchover', 0.25, replication='synchronous'),
            run('switchover', 0.21, replication='synchronous'), run('switchover', 0.9, rc=2, replication='synchronous')]
    s = benchmarks_doc.summarize(runs)
    assert s['switchover']['runs'] == 1 and s['switchover']['write_unavailable_max_s'] == 0.1
    assert s['switchover_sync']['runs'] == 2 and s['switchover_sync']['failed_runs'] == 1
    assert s['switchover_sync']['write_unavailable_median_s'] == 0.23
    text = benchmarks_doc.render({'date': '2026-12-04T22:00:00+00:00', 'runs': runs})
    table = text.split('## Switchover with synchronous replication (a quorum of one replica), idle, '
                       'WAL segments of 16 MB, 3 runs', 1)[1]
    assert '| 1 | 0.250 |' in table and '| 3 | failed |' in table
    assert '**Median write unavailability 0.230 s, maximum 0.250 s' in table
