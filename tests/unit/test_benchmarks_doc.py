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
