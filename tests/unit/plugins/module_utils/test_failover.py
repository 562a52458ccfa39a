from ansible_collections.polardb.stack.plugins.module_utils.failover import choose_failover, lsn_int
from ansible_collections.polardb.stack.plugins.filter.failover_choice import failover_choice

SYS = '7312'


def node(name, host, reachable=True, role='replica', receive=None, replay=None, sysid=SYS, current=None):
    return {'name': name, 'host': host, 'port': 5432, 'reachable': reachable, 'error': None if reachable else 'down',
            'role': role if reachable else None, 'in_recovery': (role == 'replica') if reachable else None,
            'system_identifier': sysid if reachable else None,
            'lsn': {'current': current, 'receive': receive, 'replay': replay}}


def cluster(*nodes):
    return {'nodes': dict((n['name'], n) for n in nodes),
            'rw_nodes': [n['name'] for n in nodes if n['role'] == 'primary']}


DEAD = cluster(node('pdb1', '10.0.0.1', reachable=False),
               node('pdb2', '10.0.0.2', receive='0/5000100', replay='0/5000000'),
               node('pdb3', '10.0.0.3', receive='0/5000200', replay='0/4000000'))
UP = {'pdb2': '10.0.0.1', 'pdb3': '10.0.0.1'}


def test_lsn():
    assert lsn_int('1/0') == 1 << 32
    assert lsn_int(None) is None and lsn_int('x') is None


def test_the_most_advanced_replica_of_the_dead_rw_takes_over():
    r = choose_failover(DEAD, UP, up=['pdb2', 'pdb3'])
    assert (r['from'], r['to'], r['error'], r['forced']) == ('pdb1', 'pdb3', None, False)
    assert [c['name'] for c in r['candidates']] == ['pdb3', 'pdb2']


def test_ties_by_replay_then_name_and_standbys_never():
    c = cluster(node('pdb1', '10.0.0.1', reachable=False),
                node('pdb2', '10.0.0.2', receive='0/5', replay='0/5'),
                node('pdb3', '10.0.0.3', receive='0/5', replay='0/5'))
    assert choose_failover(c, UP)['to'] == 'pdb2'
    r = choose_failover(c, UP, standbys=['pdb2'])
    assert r['to'] == 'pdb3' and 'standby' in r['refused']['pdb2']
    assert failover_choice(c, UP, up=['pdb3'])['to'] == 'pdb3'


def test_a_healthy_rw_is_refused_unless_forced():
    c = cluster(node('pdb1', '10.0.0.1', role='primary', current='0/6'),
                node('pdb2', '10.0.0.2', receive='0/6', replay='0/6'),
                node('pdb3', '10.0.0.3', receive='0/5', replay='0/5'))
    r = choose_failover(c, UP)
    assert r['to'] is None and 'answers' in r['error'] and 'force=true' in r['error']
    r = choose_failover(c, UP, force=True)
    assert (r['from'], r['to'], r['forced']) == ('pdb1', 'pdb2', True)


def test_cannot_tell_the_old_rw():
    assert 'cannot tell' in choose_failover(DEAD, {'pdb2': None, 'pdb3': None})['error']
    assert 'different nodes' in choose_failover(DEAD, {'pdb2': '10.0.0.1', 'pdb3': '10.0.0.2'})['error']
    c = cluster(node('pdb1', '10.0.0.1'), node('pdb2', '10.0.0.2'), node('pdb3', '10.0.0.3'))
    assert 'not as a dead RW' in choose_failover(c, UP)['error']
    two = cluster(node('pdb1', '10.0.0.1', role='primary'), node('pdb2', '10.0.0.2', role='primary'))
    assert '2 nodes answer as RW' in choose_failover(two, UP, force=True)['error']


def test_no_candidate():
    c = cluster(node('pdb1', '10.0.0.1', reachable=False), node('pdb2', '10.0.0.2', reachable=False),
                node('pdb3', '10.0.0.3', reachable=False))
    r = choose_failover(c, {'pdb3': '10.0.0.1'}, up=['pdb3'])
    assert r['to'] is None and 'no replica can take over from pdb1' in r['error']
    assert 'its host does not answer' in r['refused']['pdb2']
    assert 'engine does not answer' in r['refused']['pdb3']
