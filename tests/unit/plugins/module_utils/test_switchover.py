# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.runner import CommandResult, PolarDBError
from ansible_collections.polardb.stack.plugins.module_utils.instance import Instance
from ansible_collections.polardb.stack.plugins.module_utils import switchover as sw
from ansible_collections.polardb.stack.plugins.module_utils.topology import (
    PROBE_SQL, format_lsn, parse_lsn)

SYSID = '7712462526841396471'
OTHER = '7000000000000000001'
DATA = '/srv/polardb/demo/data'
CKPT = '0/5000028'            # the shutdown checkpoint record starts here
PAST = '0/50000A0'            # its end: replayed past the checkpoint
STOP = ['systemctl', 'stop', 'polardb@demo.service']
START = ['systemctl', 'start', 'polardb@demo.service']
TARGET = {'name': 'pdb2', 'host': '10.0.0.2', 'port': 5432}


# ------------------------------------------------------------------ fakes

class Clock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def controldata_text(state='in production', ckpt='0/4000060', tli=1):
    return ('pg_control version number:            1300\n'
            'Database system identifier:           %s\n'
            'Database cluster state:               %s\n'
            'Latest checkpoint location:           %s\n'
            "Latest checkpoint's TimeLineID:       %d\n"
            "Min recovery ending loc's timeline:   0\n" % (SYSID, state, ckpt, tli))


def local_probe(in_recovery=False, current='0/4FFF000', replication=None, sysid=SYSID):
    if replication is None:
        replication = [{'application_name': 'pdb2', 'client_addr': '10.0.0.2', 'state': 'streaming',
                        'sync_state': 'async', 'slot_name': 'pdb2', 'sent_lsn': current,
                        'write_lsn': current, 'flush_lsn': current, 'replay_lsn': current,
                        'replay_lag_bytes': 0}]
    return json.dumps({
        'in_recovery': in_recovery, 'server_version': '15.20', 'server_version_num': 150020,
        'polar_version': None, 'data_directory': DATA, 'system_identifier': sysid,
        'checkpoint_timeline': 1, 'wal_file': None if in_recovery else '000000010000000000000004',
        'current_lsn': None if in_recovery else current,
        'receive_lsn': current if in_recovery else None, 'replay_lsn': current if in_recovery else None,
        'wal_receiver': None, 'replication': [] if in_recovery else replication})


class Host(object):
    """The current RW's host: psql, pg_controldata and systemctl, with costs on the clock."""

    def __init__(self, clock, probe=None, states=None, stop_rc=0, start_rc=0, stop_s=0.1,
                 controldata_s=0.005, checkpoint_s=0.02, ckpt=CKPT, tli=1):
        self.clock = clock
        self.probe_text = probe if probe is not None else local_probe()
        self.states = list(states or ['in production', 'shut down'])
        self.stop_rc, self.start_rc = stop_rc, start_rc
        self.stop_s, self.controldata_s, self.checkpoint_s = stop_s, controldata_s, checkpoint_s
        self.ckpt, self.tli = ckpt, tli
        self.flushed = '0/4FFF000'   # after the CHECKPOINT
        self.checkpoints = 0
        self.running = True
        self.calls = []
        self.executed = []

    def run(self, argv, check=True, data=None, environ=None, cwd=None, become_user=None):
        argv = list(argv)
        self.calls.append(argv)
        self.executed.append(' '.join(argv))
        prog = os.path.basename(argv[0])
        rc, out, err = 0, '', ''
        if prog == 'psql':
            query = argv[argv.index('-c') + 1]
            if not self.running:
                rc, err = 2, 'psql: error: connection to server on socket failed: No such file'
            elif query == PROBE_SQL:
                out = self.probe_text + '\n'
            elif query == 'CHECKPOINT':
                self.checkpoints += 1
                cost = self.checkpoint_s
                self.clock.now += cost.pop(0) if isinstance(cost, list) else cost
                out = 'CHECKPOINT\n'
            elif query == sw.FLUSH_SQL:
                out = self.flushed + '\n'
            else:
                raise AssertionError('unexpected query %s' % query)
        elif prog == 'pg_controldata':
            self.clock.now += self.controldata_s
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            out = controldata_text(state, self.ckpt if state == 'shut down' else '0/4000060', self.tli)
        elif argv == STOP:
            self.clock.now += self.stop_s
            rc = self.stop_rc
            if rc == 0:
                self.running = False
            else:
                err = 'Job for polardb@demo.service failed'
        elif argv == START:
            rc = self.start_rc
            if rc == 0:
                self.running = True
            else:
                err = 'Job for polardb@demo.service failed'
        else:
            raise AssertionError('unexpected command %s' % argv)
        if check and rc != 0:
            raise PolarDBError('command failed (rc=%d): %s: %s' % (rc, ' '.join(argv), err), rc=rc)
        return CommandResult(rc, out, err)

    def commands(self):
        out = []
        for c in self.calls:
            if os.path.basename(c[0]) == 'psql':
                q = c[c.index('-c') + 1]
                out.append('psql:' + ('probe' if q == PROBE_SQL else 'flush' if q == sw.FLUSH_SQL else q))
            elif os.path.basename(c[0]) == 'pg_controldata':
                out.append('pg_controldata')
            else:
                out.append(' '.join(c))
        return out


class Target(object):
    """The target engine; ``connect()`` hands out sessions to it."""

    def __init__(self, clock, in_recovery=True, sysid=SYSID, replay=('0/4FFF000', '0/5000028', PAST),
                 receiver='streaming', slot='pdb2', sender=('10.0.0.1', 5432), can_promote=True,
                 promote='ok', promote_s=0.05, history='1\t0/50000A0\tno recovery target specified\n',
                 tli=1, reachable=True):
        self.clock = clock
        self.in_recovery, self.sysid, self.tli = in_recovery, sysid, tli
        self.replay = list(replay)
        self.receiver, self.slot, self.sender = receiver, slot, sender
        self.can_promote = can_promote
        self.promote, self.promote_s = promote, promote_s
        self.history = history
        self.reachable = reachable
        self.connects = 0
        self.queries = []
        self.after_promote = None    # callable run after a promote (e.g. to drop the target)
        self.slots = []
        self.slot_error = None

    def connect(self):
        self.connects += 1
        if not self.reachable:
            raise PolarDBError('cannot connect to 10.0.0.2:5432 as postgres: connection refused')
        return Session(self)

    def replay_lsn(self):
        return self.replay.pop(0) if len(self.replay) > 1 else self.replay[0]

    def probe(self):
        lsn = self.replay[0]
        return json.dumps({
            'in_recovery': self.in_recovery, 'server_version': '15.20', 'server_version_num': 150020,
            'polar_version': None, 'data_directory': DATA, 'system_identifier': self.sysid,
            'checkpoint_timeline': self.tli,
            'wal_file': None if self.in_recovery else '%08X0000000000000005' % self.tli,
            'current_lsn': None if self.in_recovery else lsn,
            'receive_lsn': lsn if self.in_recovery else None,
            'replay_lsn': lsn if self.in_recovery else None,
            'wal_receiver': {'status': self.receiver, 'received_tli': self.tli,
                             'sender_host': self.sender[0], 'sender_port': self.sender[1],
                             'slot_name': self.slot, 'flushed_lsn': lsn}
            if (self.in_recovery and self.receiver) else None,
            'replication': []})


class Session(object):
    def __init__(self, target):
        self.t = target
        self.closed = False

    def one(self, query, params=None):
        t = self.t
        t.queries.append(query)
        if not t.reachable or self.closed:
            raise PolarDBError('query failed: server closed the connection unexpectedly')
        if query == PROBE_SQL:
            return {'probe': t.probe()}
        if query == sw.CAN_PROMOTE_SQL:
            return {'can_promote': t.can_promote}
        if query == sw.REPLAY_SQL:
            return {'in_recovery': t.in_recovery, 'replay_lsn': t.replay_lsn()}
        if query == sw.RECOVERY_SQL:
            return {'in_recovery': t.in_recovery}
        if query == sw.PROMOTE_SQL:
            t.clock.now += t.promote_s
            behaviour, t.promote = t.promote, None
            if behaviour == 'missed':   # the startup process sleeps on: only a second request is seen
                t.promote = 'ok'
                return {'promoted': True}
            if behaviour in ('ok', 'lost', 'error-after'):   # 'never': stays in recovery
                t.in_recovery = False
                t.tli += 1
            if t.after_promote:
                t.after_promote()
            if behaviour in ('ok', 'never'):
                return {'promoted': True}
            if behaviour == 'false':
                return {'promoted': False}
            if behaviour == 'lost':
                raise PolarDBError('query failed: server closed the connection unexpectedly')
            raise PolarDBError('query failed: ERROR: could not write to file "promote.signal"')
        if query == sw.NEW_RW_SQL:
            return {'in_recovery': t.in_recovery,
                    'wal_file': None if t.in_recovery else '%08X0000000000000005' % t.tli}
        if query == sw.HISTORY_SQL:
            assert params == ('pg_wal/%08X.history' % t.tli,)
            return {'history': t.history}
        if query == sw.CREATE_SLOT_SQL:
            assert not t.in_recovery, 'slots are made on the new RW'
            if t.slot_error:
                raise PolarDBError(t.slot_error)
            t.slots.append(params[0])
            return {'pg_create_physical_replication_slot': '(%s,)' % params[0]}
        raise AssertionError('unexpected query %s' % query)

    def query(self, query, params=None):
        self.t.queries.append(query)
        assert query == sw.SLOTS_SQL
        return [{'slot_name': n} for n in self.t.slots]

    def close(self):
        self.closed = True


def make(clock=None, host=None, target=None, check_mode=False, **kw):
    clock = clock or Clock()
    host = host or Host(clock)
    target = target or Target(clock)
    inst = Instance(host, DATA, bin_dir='/usr/lib/postgresql/15/bin', owner='postgres', port=5432,
                    socket_dir='/var/run/postgresql')
    # round figures on the fake clock (each poll 10 ms)
    kw.setdefault('poll_interval', 0.01)
    s = sw.Switchover(inst, host, target.connect, TARGET, STOP, START, node_name='pdb1',
                      check_mode=check_mode, clock=clock, sleep=clock.sleep, **kw)
    return s, host, target, clock


# ------------------------------------------------------------- happy path

def test_happy_path_timings_and_order():
    s, host, target, clock = make()
    r = s.run()
    assert r['changed'] is True
    assert (r['old_rw'], r['new_rw']) == ('pdb1', 'pdb2')
    assert r['shutdown_checkpoint_lsn'] == CKPT
    assert r['target_replay_lsn'] == PAST   # the first replay LSN past the checkpoint
    assert r['timeline'] == 2
    assert r['lag_bytes'] == 0
    t = r['timings']
    assert t['checkpoint_s'] == pytest.approx(0.02)
    assert t['stop_s'] == pytest.approx(0.1)
    assert t['controldata_s'] == pytest.approx(0.005)
    assert t['precatchup_s'] == pytest.approx(0)    # already replayed up to the flush position
    assert t['catchup_s'] == pytest.approx(0.01)   # 1 poll at CKPT itself, then past it
    assert t['promote_s'] == pytest.approx(0.05)
    assert t['write_unavailable_s'] == pytest.approx(0.165)
    assert t['total_s'] == pytest.approx(0.19)   # + the first pg_controldata (0.005) and the CHECKPOINT
    assert clock.sleeps == [0.01]
    # checks, CHECKPOINT, flush position, stop, pg_controldata: nothing else is spawned; never started again
    assert host.commands() == ['pg_controldata', 'psql:probe', 'psql:CHECKPOINT', 'psql:flush',
                               ' '.join(STOP), 'pg_controldata']
    # one connection to the target, opened before the stop, used for the polls and the promote
    assert target.connects == 1
    promote = target.queries.index(sw.PROMOTE_SQL)
    assert target.queries[promote + 1:] == [sw.RECOVERY_SQL, sw.NEW_RW_SQL]
    assert r['executed'][2:] == [
        'CHECKPOINT on the local engine',
        'wait for pdb2 to replay up to 0/4FFF000 (before the stop)', 'stop: ' + ' '.join(STOP),
        'pg_controldata: shut down, checkpoint at %s' % CKPT,
        'wait for pdb2 to replay past %s' % CKPT,
        'pg_promote(false) on pdb2, then poll until it left recovery (at most 60 s)']
    assert 'nothing lost' in r['msg']


def test_the_new_rw_gets_the_slots_of_the_other_nodes_after_the_window():
    clock = Clock()
    target = Target(clock)
    target.slots = ['pdb3']            # left from an earlier run
    s, host, target, clock = make(clock, target=target, target_slots=['pdb1', 'pdb3'])
    r = s.run()
    assert r['slots_created'] == ['pdb1'] and target.slots == ['pdb3', 'pdb1']
    assert 'warning' not in r
    assert r['executed'][-1] == 'slots on pdb2: pdb1'
    assert target.queries.index(sw.CREATE_SLOT_SQL) > target.queries.index(sw.PROMOTE_SQL)


def test_slots_that_cannot_be_made_on_the_new_rw_are_a_warning():
    clock = Clock()
    target = Target(clock)
    target.slot_error = 'query failed: ERROR:  all replication slots are in use'
    s, host, target, clock = make(clock, target=target, target_slots=['pdb1', 'pdb3'])
    r = s.run()
    assert r['changed'] is True and r['new_rw'] == 'pdb2' and r['slots_created'] == []
    assert r['warning'] == ('could not create the slots pdb1, pdb3 on pdb2: query failed: ERROR:  all '
                            'replication slots are in use')


def test_a_lagging_replay_is_brought_up_to_the_flush_position_before_the_stop():
    clock = Clock()
    target = Target(clock, replay=('0/4F00000', '0/4F80000', '0/4FFF000', '0/5000028', PAST))
    s, host, target, clock = make(clock, target=target)
    r = s.run()
    assert r['changed'] is True
    assert r['timings']['precatchup_s'] == pytest.approx(0.02)   # 2 polls short of 0/4FFF000
    assert r['timings']['catchup_s'] == pytest.approx(0.01)
    # the waits before the stop are outside the window
    assert r['timings']['write_unavailable_s'] == pytest.approx(0.165)
    assert host.commands().index('psql:flush') < host.commands().index(' '.join(STOP))


def test_under_load_checkpoints_again_until_one_is_quick():
    clock = Clock()
    s, host, target, clock = make(clock, host=Host(clock, checkpoint_s=[1.5, 0.3, 0.05, 0.05]))
    r = s.run()
    assert host.checkpoints == 3 and r['timings']['checkpoints'] == 3
    assert r['timings']['checkpoint_s'] == pytest.approx(1.85)
    assert r['executed'].count('CHECKPOINT on the local engine') == 3
    clock = Clock()
    s, host, target, clock = make(clock, host=Host(clock, checkpoint_s=[2.0, 1.0, 0.5, 0.2]))
    assert s.run()['timings']['checkpoints'] == 3   # at most 3, quick or not
    assert host.checkpoints == 3


def test_a_target_that_cannot_keep_up_is_refused_before_the_stop():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, replay=('0/4F00000',)), catchup_timeout=1)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'did not replay up to the flush position 0/4FFF000 within 1.0 s' in e.value.msg
    assert 'cannot keep up' in e.value.msg and 'nothing was changed' in e.value.msg
    assert e.value.details['old_rw_writable'] is True  # never stopped
    assert ' '.join(STOP) not in host.commands() and ' '.join(START) not in host.commands()
    assert sw.PROMOTE_SQL not in target.queries


def test_promote_polls_until_the_target_left_recovery():
    clock = Clock()
    target = Target(clock)
    answers = [True, True, False]
    real_one = Session.one

    def one(session, query, params=None):
        if query == sw.RECOVERY_SQL and target.in_recovery is False and answers:
            target.queries.append(query)
            return {'in_recovery': answers.pop(0)}   # the startup process takes 3 polls to finish
        return real_one(session, query, params)
    Session.one = one
    try:
        s, host, target, clock = make(clock, target=target)
        r = s.run()
    finally:
        Session.one = real_one
    assert r['changed'] is True and not answers
    assert r['timings']['promote_s'] == pytest.approx(0.05 + 0.02)
    assert target.queries.count(sw.RECOVERY_SQL) == 3


def test_a_promote_request_that_is_not_acted_on_is_repeated():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='missed'))
    r = s.run()
    assert r['changed'] is True and r['new_rw'] == 'pdb2' and 'warning' not in r
    assert target.queries.count(sw.PROMOTE_SQL) == 2
    assert r['timings']['promote_requests'] == 2
    # asked again after PROMOTE_NUDGE_S of polls, not after the startup process's 1 s sleep
    # (each request costs the fake 0.05 s)
    assert r['timings']['promote_s'] == pytest.approx(0.05 + sw.PROMOTE_NUDGE_S + 0.05, abs=0.011)


def test_repeated_promote_requests_that_fail_are_only_polled_past():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='never'), promote_timeout=1)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'not promoted within 1 s' in e.value.msg
    # asked again about every PROMOTE_NUDGE_S; each further request failed and was not counted
    assert target.queries.count(sw.PROMOTE_SQL) >= 10   # each costs the fake 0.05 s
    assert e.value.details['timings']['promote_requests'] == 1


def test_replay_equal_to_the_checkpoint_is_not_enough():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, replay=(CKPT,)), catchup_timeout=0.05)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'did not replay past the shutdown checkpoint %s' % CKPT in e.value.msg
    assert host.commands()[-1] == ' '.join(START)


def test_check_mode_runs_the_checks_and_stops_nothing():
    s, host, target, clock = make(check_mode=True)
    r = s.run()
    assert r['changed'] is True
    assert r['new_rw'] == 'pdb2'
    assert r['timeline'] is None
    assert host.commands() == ['pg_controldata', 'psql:probe']
    assert not any(q.startswith('SELECT pg_promote') for q in target.queries)
    assert sw.CAN_PROMOTE_SQL in target.queries
    assert r['planned'][2] == 'stop: ' + ' '.join(STOP)
    assert r['msg'].startswith('would switch over from pdb1 to pdb2')


# ---------------------------------------------------------- already switched

def test_already_switched_local_in_recovery():
    clock = Clock()
    host = Host(clock, probe=local_probe(in_recovery=True), states=['in production'])
    s, host, target, clock = make(clock, host, Target(clock, in_recovery=False, tli=2))
    r = s.run()
    assert r['changed'] is False
    assert r['new_rw'] == 'pdb2' and r['timeline'] == 2
    assert r['msg'].startswith('already switched')
    assert host.commands() == ['pg_controldata', 'psql:probe']


def test_already_switched_local_stopped_after_its_shutdown_checkpoint():
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, in_recovery=False, tli=2))
    r = s.run()
    assert r['changed'] is False
    assert r['shutdown_checkpoint_lsn'] == CKPT
    assert 'stopped after its shutdown checkpoint' in r['msg']
    assert host.commands() == ['pg_controldata', 'psql:probe']


def test_interrupted_between_stop_and_promote_is_finished():
    # An earlier run stopped this RW and was killed before the promote.
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, replay=(PAST,)))
    r = s.run()
    assert r['changed'] is True and r['resumed'] is True
    assert r['new_rw'] == 'pdb2' and target.in_recovery is False
    assert r['msg'].startswith('resumed an interrupted switchover: switched over from pdb1 to pdb2')
    assert STOP not in host.calls and START not in host.calls


def test_interrupted_before_the_target_caught_up_restarts_the_old_rw():
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, replay=('0/4FFF000',)), catchup_timeout=1)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'restarted and is the RW again' in e.value.msg
    assert target.in_recovery is True and host.running is True


def test_interrupted_switchover_in_check_mode_changes_nothing():
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, replay=(PAST,)), check_mode=True)
    r = s.run()
    assert r['changed'] is True and r['msg'] == 'would finish an interrupted switchover to pdb2'
    assert target.in_recovery is True and not any(q.startswith('SELECT pg_promote') for q in target.queries)


def test_stopped_local_and_target_forked_before_our_checkpoint_is_refused():
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    target = Target(clock, in_recovery=False, tli=2, history='1\t0/4000000\tno recovery target\n')
    s, host, target, clock = make(clock, host, target)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'left timeline 1 at 0/4000000, before our shutdown checkpoint %s' % CKPT in e.value.msg
    assert 'pg_rewind' in e.value.msg


def test_stopped_local_after_a_crash_is_not_a_switchover():
    clock = Clock()
    host = Host(clock, states=['in production'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, in_recovery=False, tli=2))
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert "this host is not the RW: the local engine is not running" in e.value.msg
    assert "cluster state 'in production'" in e.value.msg


def test_local_replica_and_target_replica_is_not_the_rw():
    clock = Clock()
    host = Host(clock, probe=local_probe(in_recovery=True), states=['in production'])
    s, host, target, clock = make(clock, host)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert e.value.msg.startswith('this host is not the RW: the local engine is in recovery')
    assert STOP not in host.calls


def test_local_engine_down_and_target_unreachable():
    clock = Clock()
    host = Host(clock, states=['shut down'])
    host.running = False
    s, host, target, clock = make(clock, host, Target(clock, reachable=False))
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'this host is not the RW' in e.value.msg and 'unreachable too' in e.value.msg


# ------------------------------------------------------------------ refusals

def refused(target=None, host=None, **kw):
    clock = Clock()
    s, host, target, clock = make(clock, host or Host(clock), target or Target(clock, **kw))
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert host.commands() == ['pg_controldata', 'psql:probe']   # no CHECKPOINT, no stop
    assert not any(q.startswith('SELECT pg_promote') for q in target.queries)
    return e.value


def test_lagging_target_is_refused_before_any_stop():
    err = refused(replay=('0/3FFEFFF',))   # one byte over the bound (exactly at it is fine)
    assert err.msg.startswith('target pdb2 (10.0.0.2:5432) lags 16777217 bytes')
    err = refused(replay=('0/3000000',))
    assert 'lags 33550336 bytes behind this RW (> max_lag_bytes 16777216)' in err.msg
    assert err.details['lag_bytes'] == 33550336


def test_lag_at_the_bound_is_accepted():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, replay=('0/3FFF000',)), check_mode=True)
    assert s.run()['lag_bytes'] == 16777216


def test_target_not_streaming_from_us_is_refused():
    clock = Clock()
    other = local_probe(replication=[{'application_name': 'pdb3', 'slot_name': 'pdb3',
                                      'state': 'streaming', 'client_addr': '10.0.0.3'}])
    target = Target(clock, sender=('10.0.0.3', 5432), slot=None)
    err = refused(host=Host(clock, probe=other), target=target)
    assert err.msg.startswith('target pdb2 (10.0.0.2:5432) does not stream from this RW: no walsender '
                              'of this RW serves application_name pdb2')
    assert '10.0.0.3:5432' in err.msg


def test_walsender_not_yet_streaming_is_refused():
    clock = Clock()
    catchup = local_probe(replication=[{'application_name': 'pdb2', 'slot_name': 'pdb2',
                                        'state': 'catchup', 'client_addr': '10.0.0.2'}])
    err = refused(host=Host(clock, probe=catchup), target=Target(clock))
    assert 'the walsender of this RW for it is catchup' in err.msg


def test_stopped_receiver_foreign_primary_unreachable_and_no_privilege_are_refused():
    assert 'is not streaming (WAL receiver waiting)' in refused(receiver='waiting').msg
    assert 'is not streaming (no WAL receiver)' in refused(receiver=None).msg
    assert 'is foreign: system identifier %s, this RW has %s' % (OTHER, SYSID) in refused(sysid=OTHER).msg
    assert 'is not in recovery' in refused(in_recovery=False).msg
    assert 'may not execute pg_promote()' in refused(can_promote=False).msg


def test_unreachable_target_is_refused():
    clock = Clock()
    s, host, target, clock = make(clock, Host(clock), Target(clock, reachable=False))
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert e.value.msg.startswith('target pdb2 (10.0.0.2:5432) is unreachable: cannot connect')
    assert host.commands() == ['pg_controldata', 'psql:probe']


def test_walsender_found_by_slot_when_application_name_differs():
    clock = Clock()
    by_slot = local_probe(replication=[{'application_name': 'walreceiver', 'slot_name': 'pdb2',
                                        'state': 'streaming', 'client_addr': '10.0.0.2'}])
    s, host, target, clock = make(clock, Host(clock, probe=by_slot), check_mode=True)
    assert s.run()['changed'] is True


# ------------------------------------------------------------------- failures

def test_catchup_timeout_restarts_the_old_rw():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, replay=('0/4FFF000',)),
                                  catchup_timeout=0.5)
    with pytest.raises(PolarDBError) as e:
        s.run()
    msg = e.value.msg
    assert msg.startswith('target pdb2 (10.0.0.2:5432) did not replay past the shutdown checkpoint '
                          '0/5000028 within 0.5 s (replayed up to 0/4FFF000)')
    assert 'the old RW pdb1 was restarted and is the RW again' in msg and 'nothing was lost' in msg
    assert e.value.details['restarted'] is True and e.value.details['old_rw_writable'] is True
    assert host.commands()[-2:] == ['pg_controldata', ' '.join(START)]
    assert not any(q.startswith('SELECT pg_promote') for q in target.queries)
    assert e.value.details['timings']['catchup_s'] >= 0.5


def test_catchup_survives_a_broken_connection():
    clock = Clock()
    target = Target(clock)
    s, host, target, clock = make(clock, target=target)
    real_replay = target.replay_lsn
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise PolarDBError('query failed: server closed the connection unexpectedly')
        return real_replay()
    target.replay_lsn = flaky
    assert s.run()['changed'] is True
    assert target.connects == 2


def test_promote_error_with_target_still_in_recovery_restarts_the_old_rw():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='error'))
    with pytest.raises(PolarDBError) as e:
        s.run()
    msg = e.value.msg
    assert msg.startswith('promoting pdb2 (10.0.0.2:5432) failed (query failed: ERROR: could not write')
    assert 'still in recovery' in msg and 'was restarted' in msg and 'nothing was lost' in msg
    assert host.commands()[-1] == ' '.join(START)


def test_promote_timeout_restarts_and_warns_of_the_pending_request():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='never'), promote_timeout=2)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'not promoted within 2 s' in e.value.msg and 'may still be pending' in e.value.msg
    assert host.commands()[-1] == ' '.join(START)


def test_promote_refused_restarts_the_old_rw():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='false'))
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'returned false' in e.value.msg and 'may still be pending' not in e.value.msg
    assert host.commands()[-1] == ' '.join(START)


def test_promote_result_lost_but_target_is_rw_is_not_restarted():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='lost'))
    r = s.run()
    assert r['changed'] is True and r['new_rw'] == 'pdb2'
    assert 'is out of recovery: promoted' in r['warning']
    assert ' '.join(START) not in host.commands()
    assert r['timeline'] == 2


def test_promote_error_with_target_rw_is_not_restarted():
    clock = Clock()
    s, host, target, clock = make(clock, target=Target(clock, promote='error-after'))
    r = s.run()
    assert r['changed'] is True
    assert ' '.join(START) not in host.commands()


def test_promote_result_lost_and_target_gone_leaves_the_old_rw_stopped():
    clock = Clock()
    target = Target(clock, promote='lost')

    def vanish():
        target.reachable = False
    target.after_promote = vanish
    s, host, target, clock = make(clock, target=target)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'cannot be told' in e.value.msg and 'stays stopped' in e.value.msg
    assert e.value.details['restarted'] is False and e.value.details['old_rw_writable'] is False
    assert ' '.join(START) not in host.commands()


def test_target_promoted_by_someone_else_during_catchup_is_not_undone():
    clock = Clock()
    target = Target(clock, replay=('0/4FFF000',))
    s, host, target, clock = make(clock, target=target)
    real = target.replay_lsn

    def promoted_elsewhere():
        target.in_recovery = False
        return real()
    target.replay_lsn = promoted_elsewhere
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'left recovery on its own' in e.value.msg
    assert ' '.join(START) not in host.commands()


def test_stop_failure_with_engine_still_up_is_reported_without_start():
    clock = Clock()
    host = Host(clock, stop_rc=1)
    s, host, target, clock = make(clock, host)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert e.value.msg.startswith('stopping the local engine failed')
    assert 'still runs as RW' in e.value.msg
    assert host.commands()[-2:] == [' '.join(STOP), 'psql:probe']


def test_unclean_stop_restarts_the_old_rw():
    clock = Clock()
    host = Host(clock, states=['in production', 'in production'])
    s, host, target, clock = make(clock, host)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert "stopped with cluster state 'in production'" in e.value.msg
    assert host.commands()[-1] == ' '.join(START)


def test_restart_failure_is_reported():
    clock = Clock()
    host = Host(clock, start_rc=1)
    s, host, target, clock = make(clock, host, Target(clock, replay=('0/4FFF000',)),
                                  catchup_timeout=0.1)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'restarting the old RW FAILED' in e.value.msg
    assert 'the target was not promoted, nothing was lost' in e.value.msg
    assert e.value.details['restarted'] is False


def test_checkpoint_failure_changes_nothing():
    clock = Clock()
    host = Host(clock)
    real = host.run

    def run(argv, **kw):
        if argv[-1] == 'CHECKPOINT':
            return CommandResult(1, '', 'ERROR:  checkpoint request failed')
        return real(argv, **kw)
    host.run = run
    s, host, target, clock = make(clock, host)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert e.value.msg.startswith('CHECKPOINT on the local engine failed, nothing was changed')


# ------------------------------------------- the stop in the background

class Stopping(object):
    """``systemctl stop`` started by spawn(): pg_control says "shut down" after
    ``ckpt_s``, the command ends after ``stop_s`` (rc ``rc``)."""

    def __init__(self, host, started):
        self.host, self.started = host, started
        self.waited = False

    def _ended(self):
        return self.host.clock.now - self.started >= self.host.stop_s

    def poll(self):
        return self.wait() if self._ended() else None

    def wait(self, check=False):
        self.waited = True
        h = self.host
        h.clock.now = max(h.clock.now, self.started + h.stop_s)
        if h.stop_rc == 0:
            h.running = False
        h.calls.append(['(stop ended)'])
        return CommandResult(h.stop_rc, '', '' if h.stop_rc == 0 else 'Job for polardb@demo.service failed')


class SpawningHost(Host):
    """A host whose runner can spawn the stop; pg_control read directly."""

    def __init__(self, clock, ckpt_s=0.03, head_sysid=SYSID, head_ckpt=CKPT, head_reads=None, **kw):
        kw.setdefault('stop_s', 0.1)
        super(SpawningHost, self).__init__(clock, **kw)
        self.ckpt_s = ckpt_s
        self.head_sysid, self.head_ckpt = head_sysid, head_ckpt
        self.head_reads = head_reads   # a list of None (torn reads) to hand out first
        self.stopping = None

    def spawn(self, argv):
        assert list(argv) == STOP
        self.calls.append(list(argv))
        self.stopping = Stopping(self, self.clock.now)
        return self.stopping

    def control_head(self):
        if self.head_reads:
            return self.head_reads.pop(0)
        shut = (self.stopping is not None and self.stop_rc == 0 and self.ckpt_s is not None
                and self.clock.now - self.stopping.started >= self.ckpt_s)
        return {'system_identifier': self.head_sysid, 'version': 1300,
                'state': 1 if shut else 6,
                'checkpoint': parse_lsn(self.head_ckpt if shut else '0/4000060')}


def make_spawning(clock=None, target=None, **host_kw):
    clock = clock or Clock()
    host = SpawningHost(clock, **host_kw)
    s, host, target, clock = make(clock, host, target)
    s.instance.control_head = host.control_head
    return s, host, target, clock


def test_promote_starts_once_pg_control_says_shut_down_not_when_the_stop_ends():
    s, host, target, clock = make_spawning()
    r = s.run()
    assert r['changed'] is True and r['new_rw'] == 'pdb2' and 'warning' not in r
    assert r['shutdown_checkpoint_lsn'] == CKPT
    t = r['timings']
    # pg_control polled every 2 ms: seen 30 ms after the stop began, not 100 ms
    assert t['stop_s'] == pytest.approx(0.03, abs=0.0025)
    assert t['controldata_s'] == 0
    assert t['write_unavailable_s'] == pytest.approx(t['stop_s'] + t['catchup_s'] + t['promote_s'])
    assert t['write_unavailable_s'] < 0.1
    # the promote came before the stop ended; pg_controldata confirmed it afterwards
    cmds = host.commands()
    assert cmds[cmds.index(' '.join(STOP)):] == [' '.join(STOP), '(stop ended)', 'pg_controldata']
    assert any(q == sw.PROMOTE_SQL for q in target.queries)
    assert r['executed'][r['executed'].index('stop: ' + ' '.join(STOP)) + 1] == (
        'pg_control: shut down, checkpoint at %s (the engine still exits)' % CKPT)
    assert r['executed'][-1] == 'pg_controldata after the stop: shut down, checkpoint at %s' % CKPT
    assert host.stopping.waited


def test_torn_or_foreign_or_stale_pg_control_is_not_believed():
    # two torn reads, then a pg_control of another system and one before the flush position
    reads = [None, None, {'system_identifier': OTHER, 'version': 1300, 'state': 1, 'checkpoint': parse_lsn(CKPT)},
             {'system_identifier': SYSID, 'version': 1300, 'state': 1, 'checkpoint': parse_lsn('0/4000000')}]
    s, host, target, clock = make_spawning(head_reads=reads)
    r = s.run()
    assert r['changed'] is True and r['shutdown_checkpoint_lsn'] == CKPT
    assert r['timings']['stop_s'] >= 4 * sw.STOP_POLL_INTERVAL


def test_without_a_shutdown_state_in_pg_control_the_stop_and_pg_controldata_decide():
    s, host, target, clock = make_spawning(ckpt_s=None)
    r = s.run()
    assert r['changed'] is True and r['shutdown_checkpoint_lsn'] == CKPT and 'warning' not in r
    assert r['timings']['stop_s'] == pytest.approx(0.1, abs=0.0025)
    assert r['timings']['controldata_s'] == pytest.approx(0.005)
    cmds = host.commands()
    assert cmds[cmds.index(' '.join(STOP)):][:2] == [' '.join(STOP), '(stop ended)']
    assert cmds.count('pg_controldata') == 2   # before the stop, after it: no third to confirm


def test_a_stop_that_fails_before_the_checkpoint_is_undone_as_before():
    s, host, target, clock = make_spawning(stop_rc=1)
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert e.value.msg.startswith('stopping the local engine failed: systemctl stop polardb@demo.service '
                                  'failed (rc=1)')
    assert 'still runs as RW' in e.value.msg
    assert not any(q == sw.PROMOTE_SQL for q in target.queries)


def test_a_stop_that_fails_after_the_checkpoint_is_a_warning_once_the_target_is_rw():
    s, host, target, clock = make_spawning()
    real_wait = Stopping.wait

    def failing_wait(self, check=False):
        res = real_wait(self, check)
        return CommandResult(1, '', 'Job for polardb@demo.service failed because a timeout was exceeded')
    Stopping.wait = failing_wait
    try:
        r = s.run()
    finally:
        Stopping.wait = real_wait
    assert r['changed'] is True and r['new_rw'] == 'pdb2'
    assert r['warning'].startswith('the old RW pdb1 after the promote of pdb2: systemctl stop '
                                   'polardb@demo.service failed (rc=1): Job for')


def test_pg_controldata_disagreeing_after_the_stop_is_a_warning():
    s, host, target, clock = make_spawning(head_ckpt='0/5000000')
    target.replay = ['0/4FFF000', '0/5000000', PAST]
    r = s.run()
    assert r['changed'] is True
    assert r['shutdown_checkpoint_lsn'] == '0/5000000'
    assert ('pg_controldata says shut down, checkpoint at %s, after the target replayed past the shutdown '
            'checkpoint 0/5000000 read from pg_control' % CKPT) in r['warning']


def test_the_old_rw_is_restarted_only_after_its_background_stop_ended():
    clock = Clock()
    s, host, target, clock = make_spawning(clock, target=Target(clock, replay=('0/4FFF000',)),
                                           stop_s=0.6)
    s.catchup_timeout = 0.2
    with pytest.raises(PolarDBError) as e:
        s.run()
    assert 'the old RW pdb1 was restarted' in e.value.msg
    cmds = host.commands()
    assert cmds[-2:] == ['(stop ended)', ' '.join(START)]


# ------------------------------------------------------------ pure helpers

def test_parse_timeline_history_and_switchpoint():
    text = '1\t0/5000028\tno recovery target specified\n\n2\t0/6000000\tafter x\n# comment\nbad line\n'
    h = sw.parse_timeline_history(text)
    assert h == [(1, '0/5000028', 'no recovery target specified'), (2, '0/6000000', 'after x')]
    assert sw.switchpoint(h, 2) == '0/6000000'
    assert sw.switchpoint(h, 3) is None
    assert sw.parse_timeline_history(None) == []


def node(name, role='replica', lag=0, reachable=True, sysid=SYSID, status='streaming', upstream_node='p',
         host=None, port=5432, error=None):
    n = {'name': name, 'host': host or '10.0.0.%d' % (ord(name[-1]) % 200), 'port': port,
         'reachable': reachable, 'error': error, 'role': role if reachable else None,
         'system_identifier': sysid if reachable else None, 'lag_bytes': lag,
         'upstream': None, 'upstream_node': None}
    if reachable and role == 'replica' and status:
        n['upstream'] = {'host': '10.0.0.1', 'port': 5432, 'status': status, 'slot': name}
        n['upstream_node'] = upstream_node
    if role == 'primary':
        n['lag_bytes'] = None
    return n


def cluster(*nodes):
    rw_nodes = [n['name'] for n in nodes if n.get('role') == 'primary']
    return {'rw': rw_nodes[0] if rw_nodes else None, 'rw_nodes': rw_nodes, 'problems': [],
            'nodes': dict((n['name'], n) for n in nodes)}


def test_choose_least_lag_then_name():
    c = cluster(node('p', 'primary'), node('c', lag=100), node('b', lag=10), node('a', lag=10))
    r = sw.choose_target(c)
    assert r['error'] is None
    assert r['target'] == 'a'
    assert r['node'] == {'name': 'a', 'host': c['nodes']['a']['host'], 'port': 5432}
    assert [x['name'] for x in r['candidates']] == ['a', 'b', 'c']
    assert r['refused'] == {'p': 'it is the RW'}
    assert r['rw'] == 'p'


def test_choose_skips_unfit_nodes_and_explains():
    c = cluster(node('p', 'primary'), node('a', lag=2 ** 30), node('b', reachable=False, error='timeout'),
                node('c', status='waiting'), node('d', status=None), node('e', sysid=OTHER),
                node('f', upstream_node='g'), node('g'), node('h', upstream_node=None),
                node('i', lag=None), node('s'))
    r = sw.choose_target(c, standbys=['s'])
    assert r['target'] == 'g'
    assert [x['name'] for x in r['candidates']] == ['g']
    assert r['refused'] == {
        'p': 'it is the RW',
        'a': 'lags 1073741824 bytes > bound 16777216',
        'b': 'unreachable: timeout',
        'c': 'not streaming (WAL receiver waiting)',
        'd': 'not streaming (no WAL receiver)',
        'e': 'foreign: system identifier %s differs from the RW p (%s)' % (OTHER, SYSID),
        'f': 'streams from g (cascaded), not from the RW p',
        'h': 'streams from 10.0.0.1:5432, not from the RW p (%s:5432)' % c['nodes']['p']['host'],
        'i': 'lag unknown',
        's': 'a standby (taken only when named explicitly)',
    }
    # without a bound the lagging one is fine; unbounded, it still comes last
    assert [x['name'] for x in sw.choose_target(c, standbys=['s'], max_lag_bytes=None)['candidates']] == ['g', 'a']


def test_choose_named_target():
    c = cluster(node('p', 'primary'), node('a', lag=0), node('s', lag=5), node('z', lag=2 ** 25))
    assert sw.choose_target(c, 's', standbys=['s'])['target'] == 's'
    r = sw.choose_target(c, 'z')
    assert r['target'] is None and r['node'] is None
    assert r['error'] == 'cannot switch over to z: lags 33554432 bytes > bound 16777216'
    assert sw.choose_target(c, 'p')['error'] == 'cannot switch over to p: it is the RW'
    assert sw.choose_target(c, 'nope')['error'] == 'cannot switch over to nope: unknown node (nodes: a, p, s, z)'
    assert sw.choose_target(c, 'z', max_lag_bytes=2 ** 26)['target'] == 'z'


def test_choose_needs_exactly_one_rw_and_a_candidate():
    two = cluster(node('p', 'primary'), node('q', 'primary'), node('a'))
    two['problems'] = ['2 RW nodes: p, q']
    r = sw.choose_target(two)
    assert r['target'] is None
    assert r['error'] == 'no switchover without exactly one RW (RW nodes: p, q): 2 RW nodes: p, q'
    assert sw.choose_target(cluster(node('a')))['error'].startswith(
        'no switchover without exactly one RW (RW nodes: none)')
    r = sw.choose_target(cluster(node('p', 'primary'), node('a', reachable=False, error='refused')))
    assert r['error'] == 'no replica can take over from p: a: unreachable: refused'
    r = sw.choose_target(cluster(node('p', 'primary')))
    assert r['error'] == 'no replica can take over from p: the cluster has no other node'


def test_choose_accepts_a_real_cluster_info_result():
    from ansible_collections.polardb.stack.plugins.module_utils.topology import build_topology, parse_probe
    rw = parse_probe(local_probe(current='0/5000100'))
    rep = parse_probe(Target(Clock(), replay=('0/5000000',)).probe())
    probes = [{'name': 'pdb1', 'host': '10.0.0.1', 'port': 5432, 'reachable': True, 'state': rw},
              {'name': 'pdb2', 'host': '10.0.0.2', 'port': 5432, 'reachable': True, 'state': rep}]
    r = sw.choose_target(build_topology(probes))
    assert r['error'] is None and r['target'] == 'pdb2'
    assert r['node'] == TARGET


def test_lsn_helpers_round_trip_used_here():
    assert parse_lsn(PAST) > parse_lsn(CKPT)
    assert format_lsn(parse_lsn(CKPT)) == CKPT


# ------------------------------------------------------ Instance.execute

def test_instance_execute_runs_psql_as_owner_and_raises_on_error():
    clock = Clock()
    host = Host(clock)
    inst = Instance(host, DATA, owner='postgres', port=5433, socket_dir='/run/pg')
    assert inst.execute('CHECKPOINT') == 'CHECKPOINT\n'
    argv = host.calls[-1]
    assert argv[:9] == ['/usr/lib/postgresql/15/bin/psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
                        '-h', '/run/pg', '-p', '5433', '-d']
    assert argv[-2:] == ['-c', 'CHECKPOINT']
    host.running = False
    with pytest.raises(PolarDBError) as e:
        inst.execute('CHECKPOINT')
    assert e.value.msg.startswith('CHECKPOINT on /run/pg port 5433 failed (rc=2): psql: error')


def test_rejoin_report_lists_each_node_and_what_does_not_follow():
    results = {
        'pdb1': {'role': 'replica', 'receiver': 'streaming', 'actions': ['start polardb@demo.service']},
        'pdb2': {'role': 'rw', 'receiver': None, 'actions': []},
        'pdb3': {'role': 'replica', 'receiver': 'none (no receiver)', 'actions': ['write replication.conf']},
    }
    out = sw.rejoin_report(results, 'pdb1', 'pdb2')
    assert out['lines'] == ['pdb1: replica of pdb2, streaming (was the RW); start polardb@demo.service',
                            'pdb2: RW; nothing to change',
                            'pdb3: replica of pdb2, none (no receiver); write replication.conf']
    assert out['problems'] == ['pdb3: its WAL receiver towards pdb2 is none (no receiver)']
    results['pdb3']['receiver'] = 'startup,streaming'
    assert sw.rejoin_report(results, 'pdb1', 'pdb2')['problems'] == []


def test_rejoin_report_a_node_that_did_not_answer_or_a_new_rw_that_is_not_is_a_problem():
    out = sw.rejoin_report({'pdb1': {'skipped': True}, 'pdb2': {'role': 'replica', 'receiver': 'streaming'},
                            'pdb3': None}, 'pdb1', 'pdb2')
    assert out['problems'] == ['pdb1: no answer (did not run)', 'pdb2: is replica, not the RW',
                               'pdb3: no answer (did not run)']
