# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandResult, PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils import replication as rp

SERVICE = 'polardb@demo.service'
UPSTREAM = {'name': 'pdb2', 'host': '10.0.0.2', 'port': 5432}
CONF = "primary_conninfo = 'host=10.0.0.2 port=5432'\n"
RW_CONF = '# pdb2 is the read-write node: it replicates from nobody.\n'


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Engine(object):
    """The local engine and systemd: SQL through ``execute``, units through ``run``."""

    def __init__(self, data_dir, running=True, in_recovery=True, slots=(), receiver_after=0,
                 receiver_after_restart=0, start_rc=0, initialized=True, clock=None):
        self.data_dir = str(data_dir)
        self.running, self.in_recovery = running, in_recovery
        self.slots = set(slots)
        self.receiver_after, self.receiver_after_restart = receiver_after, receiver_after_restart
        self.start_rc = start_rc
        self.initialized = initialized
        self.clock = clock or Clock()
        self.receiver_at = None if not running else self.clock.now + receiver_after
        self.starting_for = 0.0   # seconds a receiver shows 'starting' before 'streaming'
        self.commands = []
        self.statements = []
        self.active_slots = set()   # a cascading standby streams through them
        self.ending = {}

    # instance adapter
    def _owner_ids(self):
        return os.getuid(), os.getgid()

    def dir_state(self):
        return {'exists': True, 'initialized': self.initialized, 'entries': [], 'major_version': '15',
                'mode': '0700'}

    def probe(self):
        if not self.running:
            return None, 'psql: error: connection to server on socket failed'
        return {'in_recovery': self.in_recovery}, None

    def execute(self, statement):
        self.statements.append(statement)
        if not self.running:
            raise PolarDBError('psql: could not connect')
        if statement == rp.SLOTS_SQL:
            return '\n'.join(sorted(self.slots)) + '\n'
        if statement.startswith('SELECT coalesce(string_agg(status'):
            assert "'10.0.0.2'" in statement
            up = self.receiver_at is not None and self.clock.now >= self.receiver_at
            starting = self.receiver_at is not None and self.clock.now >= self.receiver_at - self.starting_for
            return ('streaming' if up else 'starting' if starting else '') + '\n'
        if statement.startswith('SELECT pg_create_physical_replication_slot('):
            self.slots.add(statement.split("'")[1])
            return '\n'
        if statement.startswith('SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots'):
            slot = statement.split("'")[1]
            if slot in self.active_slots:
                self.ending.setdefault(slot, self.clock.now + 0.05)   # the walsender exits a moment later
            return '\n'
        if statement.startswith('SELECT pg_drop_replication_slot('):
            slot = statement.split("'")[1]
            if slot in self.active_slots and self.clock.now < self.ending.get(slot, float('inf')):
                raise PolarDBError('%s on /var/run/postgresql port 5432 failed (rc=1): ERROR: replication slot '
                                   '"%s" is active for PID 4242' % (statement, slot))
            self.slots.discard(slot)
            return '\n'
        raise AssertionError('unexpected SQL %s' % statement)

    # runner adapter
    def run(self, argv, check=True, data=None, environ=None, cwd=None, become_user=None):
        self.commands.append(' '.join(argv))
        rc, out = 0, ''
        if argv[:2] == ['systemctl', 'start']:
            rc = self.start_rc
            if rc == 0:
                self.running = True
                self.receiver_at = self.clock.now + self.receiver_after
        elif argv[:2] == ['systemctl', 'restart']:
            self.receiver_at = self.clock.now + self.receiver_after_restart
        elif argv[0] == 'journalctl':
            out = 'FATAL:  could not load pg_hba.conf\nFailed to kill control group\n'
        if check and rc != 0:
            raise PolarDBError('command failed (rc=%d): %s' % (rc, ' '.join(argv)))
        return CommandResult(rc, out, '')


def make(tmp_path, engine=None, upstream='default', conf=CONF, check_mode=False, **kw):
    if upstream == 'default':
        upstream = dict(UPSTREAM)
    data = tmp_path / 'data'
    data.mkdir(exist_ok=True)
    engine = engine or Engine(data)
    clock = engine.clock
    r = rp.Replication(engine, engine, SERVICE, str(tmp_path / 'replication.conf'), conf,
                       upstream=upstream, check_mode=check_mode, clock=clock, sleep=clock.sleep, **kw)
    return r, engine


def test_old_rw_rejoins_signal_conf_start_receiver_and_its_slots_dropped(tmp_path):
    engine = Engine(tmp_path / 'data', running=False, slots=('pdb2', 'pdb3', 'keepme'))
    r, engine = make(tmp_path, engine, drop_slots=['pdb2', 'pdb3'])
    result = r.run()
    assert result['changed'] is True and result['role'] == 'replica'
    assert result['actions'] == [
        'create %s/standby.signal' % engine.data_dir, 'write %s/replication.conf' % tmp_path,
        'start %s' % SERVICE, 'drop slot pdb2', 'drop slot pdb3']
    assert (tmp_path / 'replication.conf').read_text() == CONF
    assert stat.S_IMODE(os.stat(str(tmp_path / 'replication.conf')).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.join(engine.data_dir, 'standby.signal')).st_mode) == 0o600
    assert engine.slots == {'keepme'}
    assert result['receiver'] == 'streaming'
    assert engine.commands == ['systemctl start %s' % SERVICE]


def test_a_running_replica_is_reloaded_and_waited_for(tmp_path):
    (tmp_path / 'replication.conf').write_text('old\n')
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'standby.signal').write_text('')
    engine = Engine(tmp_path / 'data', receiver_after=1.0)
    r, engine = make(tmp_path, engine)
    result = r.run()
    assert result['actions'] == ['write %s/replication.conf' % tmp_path, 'reload %s' % SERVICE]
    assert result['reloaded'] and not result['restarted']
    # streaming after 1 s: seen at the first poll after it
    assert 1.0 <= result['timings']['receiver_s'] <= 1.0 + rp.POLL_INTERVAL
    assert result['diff'] == {'before': {str(tmp_path / 'replication.conf'): 'old\n'},
                              'after': {str(tmp_path / 'replication.conf'): CONF}}


def test_a_follower_in_place_changes_nothing(tmp_path):
    (tmp_path / 'replication.conf').write_text(CONF)
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'standby.signal').write_text('')
    r, engine = make(tmp_path, drop_slots=['pdb2'])
    result = r.run()
    assert result['changed'] is False and result['actions'] == []
    assert engine.commands == []
    assert result['receiver'] == 'streaming'


def test_a_follower_keeps_the_slots_of_nodes_that_stream_from_it_and_drops_the_others(tmp_path):
    # a switchover's target before the stop (synchronous replication): pdb3 will stream from it
    (tmp_path / 'replication.conf').write_text(CONF)
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'standby.signal').write_text('')
    engine = Engine(tmp_path / 'data', slots=('pdb1',))
    r, engine = make(tmp_path, engine, check_mode=True, slots=['pdb3'], drop_slots=['pdb1'])
    result = r.run()
    assert result['actions'] == ['would drop slot pdb1', 'would create slot pdb3'] and engine.slots == {'pdb1'}
    r, engine = make(tmp_path, engine, slots=['pdb3'], drop_slots=['pdb1'])
    result = r.run()
    assert result['changed'] is True and result['actions'] == ['drop slot pdb1', 'create slot pdb3']
    assert result['slots_created'] == ['pdb3'] and engine.slots == {'pdb3'}
    assert engine.commands == []  # no reload: the node's own settings did not change
    r, engine = make(tmp_path, engine, slots=['pdb3'], drop_slots=['pdb1'])
    assert r.run()['changed'] is False and engine.slots == {'pdb3'}


def test_a_starting_receiver_is_waited_for_until_it_streams_without_a_restart(tmp_path):
    (tmp_path / 'replication.conf').write_text(CONF)
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'standby.signal').write_text('')
    engine = Engine(tmp_path / 'data', receiver_after=3.0)
    engine.starting_for = 2.5
    r, engine = make(tmp_path, engine, receiver_timeout=5)
    result = r.run()
    assert result['receiver'] == 'streaming' and result['restarted'] is False
    assert 3.0 <= result['timings']['receiver_s'] <= 3.0 + rp.POLL_INTERVAL
    # one that never streams is reported as it is, not restarted (it exists)
    engine = Engine(tmp_path / 'data', receiver_after=1000)
    engine.starting_for = 999.5
    r, engine = make(tmp_path, engine, receiver_timeout=2)
    result = r.run()
    assert result['receiver'] == 'starting' and engine.commands == []


def test_no_receiver_means_one_restart(tmp_path):
    (tmp_path / 'replication.conf').write_text(CONF)
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'standby.signal').write_text('')
    engine = Engine(tmp_path / 'data', receiver_after=1000, receiver_after_restart=0.5)
    r, engine = make(tmp_path, engine, receiver_timeout=2)
    result = r.run()
    assert result['restarted'] is True and result['changed'] is True
    assert engine.commands == ['systemctl restart %s' % SERVICE]
    assert result['actions'][0].startswith('restart %s (no WAL receiver towards 10.0.0.2 after 2 s' % SERVICE)
    assert result['receiver'] == 'streaming'


def test_a_running_primary_or_an_empty_node_is_refused_untouched(tmp_path):
    r, engine = make(tmp_path, Engine(tmp_path / 'data', in_recovery=False))
    with pytest.raises(PolarDBError) as e:
        r.run()
    assert 'runs as a primary while pdb2 is the RW' in e.value.msg and 'rebuild_node' in e.value.msg
    assert not (tmp_path / 'replication.conf').exists() and engine.commands == []
    r, engine = make(tmp_path, Engine(tmp_path / 'data', initialized=False, running=False))
    with pytest.raises(PolarDBError) as e:
        r.run()
    assert 'holds no data' in e.value.msg
    assert not os.path.exists(os.path.join(engine.data_dir, 'standby.signal'))


def test_start_failure_names_the_engine_log(tmp_path):
    r, engine = make(tmp_path, Engine(tmp_path / 'data', running=False, start_rc=1))
    with pytest.raises(PolarDBError) as e:
        r.run()
    assert 'systemctl start %s failed' % SERVICE in e.value.msg
    assert 'FATAL: could not load pg_hba.conf' in ' '.join(e.value.msg.split())
    assert 'Failed to kill' not in e.value.msg


def test_check_mode_writes_nothing_and_says_would(tmp_path):
    engine = Engine(tmp_path / 'data', running=True, slots=('pdb2',))
    r, engine = make(tmp_path, engine, check_mode=True, drop_slots=['pdb2', 'pdb3'])
    result = r.run()
    assert result['changed'] is True
    assert result['actions'] == ['would create %s/standby.signal' % engine.data_dir,
                                 'would write %s/replication.conf' % tmp_path,
                                 'would reload %s' % SERVICE, 'would drop slot pdb2']
    assert not (tmp_path / 'replication.conf').exists()
    assert not os.path.exists(os.path.join(engine.data_dir, 'standby.signal'))
    assert engine.commands == [] and engine.slots == {'pdb2'}


def test_the_rw_gets_its_conf_a_reload_and_the_missing_slots(tmp_path):
    engine = Engine(tmp_path / 'data', in_recovery=False, slots=('pdb1',))
    r, engine = make(tmp_path, engine, upstream=None, conf=RW_CONF, slots=['pdb1', 'pdb3'])
    result = r.run()
    assert result['role'] == 'rw'
    assert result['actions'] == ['write %s/replication.conf' % tmp_path, 'reload %s' % SERVICE,
                                 'create slot pdb3']
    assert engine.slots == {'pdb1', 'pdb3'} and result['slots_created'] == ['pdb3']
    assert engine.commands == ['systemctl reload %s' % SERVICE]
    # again: nothing to do
    r, engine = make(tmp_path, engine, upstream=None, conf=RW_CONF, slots=['pdb1', 'pdb3'])
    assert r.run()['changed'] is False


def test_the_rw_must_be_a_running_primary(tmp_path):
    for engine, text in ((Engine(tmp_path / 'data'), 'in recovery'),
                         (Engine(tmp_path / 'data', running=False), 'does not answer')):
        r, engine = make(tmp_path, engine, upstream=None, conf=RW_CONF)
        with pytest.raises(PolarDBError) as e:
            r.run()
        assert text in e.value.msg


def test_slot_names_are_checked_before_anything(tmp_path):
    with pytest.raises(PolarDBError) as e:
        make(tmp_path, drop_slots=["x'; DROP TABLE t; --"])
    assert 'invalid slot names' in e.value.msg
    assert rp.quote_literal("it's") == "'it''s'"


def test_a_slot_a_node_streams_through_from_this_standby_is_freed_then_dropped(tmp_path):
    # the old RW restarted as a standby; a replica not yet re-pointed reconnected to it through its old slot
    (tmp_path / 'data').mkdir()
    engine = Engine(tmp_path / 'data', running=False, slots=['pdb2', 'pdb3', 'keepme'])
    engine.active_slots = {'pdb3'}
    r, engine = make(tmp_path, engine, drop_slots=['pdb2', 'pdb3'])
    result = r.run()
    assert result['slots_dropped'] == ['pdb2', 'pdb3'] and engine.slots == {'keepme'}
    terminated = [s for s in engine.statements if s.startswith('SELECT pg_terminate_backend')]
    assert "slot_name = 'pdb3'" in terminated[-1]
    # refused while its walsender was still exiting, dropped once it had
    drops = [s for s in engine.statements if s.startswith("SELECT pg_drop_replication_slot('pdb3')")]
    assert len(drops) > 1


def test_a_slot_that_stays_active_fails_after_the_receiver_timeout(tmp_path):
    (tmp_path / 'data').mkdir()
    engine = Engine(tmp_path / 'data', running=False, slots=['pdb3'])
    engine.active_slots = {'pdb3'}
    engine.ending = {'pdb3': float('inf')}
    real = engine.execute

    def never_ends(statement):
        out = real(statement)
        engine.ending['pdb3'] = float('inf')
        return out
    engine.execute = never_ends
    r, engine = make(tmp_path, engine, drop_slots=['pdb3'], receiver_timeout=1)
    with pytest.raises(PolarDBError) as e:
        r.run()
    assert 'replication slot "pdb3" is active' in e.value.msg


@pytest.mark.parametrize('result, expected', [
    ({'role': 'rw', 'receiver': None}, True),
    ({'role': 'replica', 'receiver': 'streaming'}, True),
    ({'role': 'replica', 'receiver': 'catchup,streaming'}, True),
    ({'role': 'replica', 'receiver': 'none'}, False),
    ({'role': 'replica', 'receiver': 'unknown (check mode)'}, False),
    ({'role': 'replica'}, False),
])
def test_in_place_is_what_the_rejoin_report_asks_of_a_node(result, expected):
    assert rp.in_place(result) is expected
    problems = rp_report({'pdb3' if result['role'] == 'replica' else 'pdb2': result})
    assert (problems == []) is expected


def rp_report(results):
    from ansible_collections.polardb.stack.plugins.module_utils.switchover import rejoin_report
    return rejoin_report(results, 'pdb1', 'pdb2')['problems']
