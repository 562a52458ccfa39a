"""The Kubernetes API as control plane, on a real kube-apiserver (lab/k8s): the
resource definition and its schema, the module that declares clusters, the
operation lock on a Lease, the inventory plugin, and RBAC. Every call of the
collection runs as a service account bound only to the collection's ClusterRoles.
Needs no lab host."""
import json
import os
import subprocess
import time

import pytest

from k8stools import (ADMIN_KUBECONFIG, NAMESPACE, Api, ansible_env, jwt_subject, k8s_lab, service_account_kubeconfig,
                      setup_namespace)
from labtools import ROOT, VENV_BIN

CLUSTERS = '/apis/stack.polardb.io/v1alpha1/namespaces/%s/polardbclusters' % NAMESPACE
NODES = [dict(name='pdb1', host='10.213.77.11', wwid='6001405aaaaaaaaaaaaaaaaaaaaaaaaa1'),
         dict(name='pdb2', host='10.213.77.12', wwid='6001405aaaaaaaaaaaaaaaaaaaaaaaaa2'),
         dict(name='pdb3', host='10.213.77.13', wwid='6001405aaaaaaaaaaaaaaaaaaaaaaaaa3')]


def module(kubeconfig, name, args, check=False, diff=False):
    """One module run on localhost, its result as JSON."""
    argv = [os.path.join(VENV_BIN, 'ansible'), 'localhost', '-m', name, '-a', json.dumps(dict(args, kubeconfig=kubeconfig))]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    e = dict(ansible_env(), ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json')
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=e, timeout=120, check=False)
    # the JSON document, after the timing line ansible.cfg's profile_tasks prints first
    out = json.JSONDecoder().raw_decode(proc.stdout[proc.stdout.index('{'):])[0]
    return out['plays'][0]['tasks'][0]['hosts']['localhost']


@pytest.fixture(scope='module')
def k8s(tmp_path_factory):
    started = time.monotonic()
    k8s_lab('up')
    print('control plane up in %.1f s' % (time.monotonic() - started))
    d = tmp_path_factory.mktemp('k8s')
    # reconciler: what reconcile.yml runs as (the account k8s_setup.yml made); editor: declares clusters only
    ids = setup_namespace(ADMIN_KUBECONFIG, NAMESPACE, d)
    ids.update(nobody=service_account_kubeconfig(ids['admin'], NAMESPACE, 'nobody', str(d / 'nobody')), dir=d)
    yield ids
    for name in ('orders', 'bad', 'twice'):
        ids['admin'].call('DELETE', CLUSTERS + '/' + name)


def declare(k8s, name='orders', check=False, diff=False, **spec):
    args = dict(name=name, namespace=NAMESPACE, primary='pdb1', replicas=1, nodes=NODES)
    args.update(spec)
    return module(k8s['editor'], 'polardb.stack.cluster_resource', args, check=check, diff=diff)


def test_setup_is_idempotent_and_the_definition_is_served(k8s):
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/k8s_setup.yml',
                           '-e', 'polardb_k8s_namespace=' + NAMESPACE, '-e', 'polardb_k8s_kubeconfig=' + ADMIN_KUBECONFIG],
                          capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=300, check=False)
    assert proc.returncode == 0 and 'changed=0' in proc.stdout, proc.stdout
    status, crd = k8s['admin'].call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/'
                                           'polardbclusters.stack.polardb.io')
    assert status == 200
    assert {c['type']: c['status'] for c in crd['status']['conditions']}['Established'] == 'True'
    assert jwt_subject(k8s['reconciler']) == 'system:serviceaccount:%s:polardb-stack-reconciler' % NAMESPACE
    # a preview for a new namespace makes nothing
    preview = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/k8s_setup.yml', '--check',
                              '-e', 'polardb_k8s_namespace=preview-only', '-e', 'polardb_k8s_kubeconfig=' + ADMIN_KUBECONFIG],
                             capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=300, check=False)
    assert preview.returncode == 0 and 'namespace preview-only is new' in preview.stdout, preview.stdout[-3000:]
    assert k8s['admin'].call('GET', '/api/v1/namespaces/preview-only')[0] == 404


def test_the_module_declares_a_cluster_in_check_mode_then_for_real_then_idempotently(k8s):
    preview = declare(k8s, check=True)
    assert preview['changed'] and preview['changes'] == ['created'], preview
    assert k8s['admin'].call('GET', CLUSTERS + '/orders')[0] == 404  # a server-side dry run wrote nothing
    made = declare(k8s, parameters={'work_mem': '16MB', 'max_connections': 200})
    assert made['changed'] and made['method'] == 'create', made
    status, obj = k8s['admin'].call('GET', CLUSTERS + '/orders')
    assert status == 200
    # the API server's defaults and what the module sent
    assert obj['spec']['deletionPolicy'] == 'Retain'
    assert [n['port'] for n in obj['spec']['nodes']] == [5432] * 3
    assert obj['spec']['parameters'] == {'work_mem': '16MB', 'max_connections': 200}
    again = declare(k8s, parameters={'work_mem': '16MB', 'max_connections': 200})
    assert not again['changed'] and again['changes'] == [], again
    assert k8s['admin'].call('GET', CLUSTERS + '/orders')[1]['metadata']['generation'] == 1


def test_an_update_changes_only_what_is_given_and_removes_a_dropped_parameter(k8s):
    declare(k8s, parameters={'work_mem': '16MB', 'max_connections': 200})
    out = declare(k8s, diff=True, replicas=2, parameters={'work_mem': '32MB'})
    assert out['changed'] and out['changes'] == ['parameters', 'replicas'], out
    assert out['diff']['before']['replicas'] == 1 and out['diff']['after']['replicas'] == 2
    obj = k8s['admin'].call('GET', CLUSTERS + '/orders')[1]
    assert obj['spec']['parameters'] == {'work_mem': '32MB'}
    assert obj['spec']['replicas'] == 2 and obj['spec']['primary'] == 'pdb1'


@pytest.mark.parametrize('spec, says', [
    (dict(primary='pdb9'), 'spec.primary must be the name of one of spec.nodes'),
    (dict(replicas=3), 'spec.replicas is more than the nodes that can be replicas'),
    (dict(nodes=[dict(NODES[0]), dict(NODES[1], wwid='0x' + NODES[0]['wwid'].upper())]), 'each node needs a LUN of its own'),
    (dict(nodes=[dict(NODES[0], wwid='not-a-wwid')]), 'spec.nodes[0].wwid'),
    (dict(instance_class='huge'), 'supported values: "small", "medium", "large", "xlarge"'),
    (dict(parameters={'Work-Mem': '1MB'}), 'parameter names are lower-case identifiers'),
    (dict(nodes=[dict(NODES[0], port=80)]), 'spec.nodes[0].port'),
])
def test_the_api_server_refuses_an_invalid_resource(k8s, spec, says):
    out = declare(k8s, name='bad', **spec)
    assert out.get('failed') and says in out['msg'], out
    assert k8s['admin'].call('GET', CLUSTERS + '/bad')[0] == 404


def test_kubectl_get_shows_phase_rw_and_ready_from_the_status(k8s):
    declare(k8s)
    reconciler = Api(k8s['reconciler'])
    status, obj = reconciler.call('PATCH', CLUSTERS + '/orders/status', dict(status=dict(
        phase='Running', rw='pdb2', ready='2/2', observedGeneration=1)), content_type='application/merge-patch+json')
    assert status == 200, obj
    kubectl = os.path.join(os.path.dirname(os.path.realpath(k8s_lab_bin('kubectl'))), 'kubectl')
    proc = subprocess.run([kubectl, '--kubeconfig', k8s['editor'], 'get', 'pdbc', 'orders'], capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.splitlines()
    assert header.split()[:4] == ['NAME', 'PHASE', 'RW', 'READY'] and row.split()[:4] == ['orders', 'Running', 'pdb2', '2/2']
    # the status is the reconciler's: the editor's write to it is refused
    assert Api(k8s['editor']).call('PATCH', CLUSTERS + '/orders/status', dict(status=dict(phase='Failed')),
                                   content_type='application/merge-patch+json')[0] == 403
    got = declare(k8s, name='orders', state='query', nodes=None, primary=None, replicas=None)
    assert got['summary']['rw'] == 'pdb2' and got['summary']['phase'] == 'Running'


def plain(value):
    """ansible-inventory --list wraps strings from a source as {'__ansible_unsafe': text}."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((k, plain(v)) for k, v in value.items())
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def k8s_lab_bin(name):
    out = subprocess.run([os.path.join(VENV_BIN, 'python'), '-c',
                          'import runpy,sys; m=runpy.run_path(sys.argv[1]); print(m["BIN"])',
                          os.path.join(ROOT, 'lab', 'k8s', 'k8s_lab.py')], capture_output=True, text=True, check=True)
    return os.path.join(out.stdout.strip(), name)


@pytest.mark.parametrize('who, method, path, allowed', [
    ('reconciler', 'GET', CLUSTERS, True),
    ('reconciler', 'POST', CLUSTERS, False),                      # declaring is the editor's
    ('reconciler', 'DELETE', CLUSTERS + '/orders', False),
    ('reconciler', 'GET', '/api/v1/namespaces/%s/secrets' % NAMESPACE, False),
    ('reconciler', 'GET', '/apis/stack.polardb.io/v1alpha1/namespaces/default/polardbclusters', False),  # another namespace
    ('reconciler', 'GET', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', False),
    ('editor', 'GET', '/apis/coordination.k8s.io/v1/namespaces/%s/leases/x' % NAMESPACE, False),
    ('nobody', 'GET', CLUSTERS, False),
])
def test_rbac_grants_the_collection_what_it_needs_and_no_more(k8s, who, method, path, allowed):
    status, answer = Api(k8s[who]).call(method, path, dict(metadata=dict(name='x')) if method == 'POST' else None)
    if allowed:
        assert status == 200, answer
    else:
        assert status == 403, (status, answer)


def lock(k8s, run, state='acquired', operation='switchover', check=False, **extra):
    args = dict(cluster='orders', state=state, operation=operation if state == 'acquired' else None,
                owner=dict(run_id=run, controller='test', pid=os.getpid()), lease_seconds=5,
                store='kubernetes', k8s_namespace=NAMESPACE)
    args.update(extra)
    args = dict((k, v) for k, v in args.items() if v is not None)
    return module(k8s['reconciler'], 'polardb.stack.operation_lock', args, check=check)


def test_the_operation_lock_is_a_lease_a_second_run_is_refused_naming_the_holder(k8s):
    preview = lock(k8s, 'run-a', check=True)
    assert preview['changed'] and not preview.get('failed'), preview
    leases = '/apis/coordination.k8s.io/v1/namespaces/%s/leases' % NAMESPACE
    assert k8s['admin'].call('GET', leases + '/polardb-lock-orders')[0] == 404
    first = lock(k8s, 'run-a', params={'to': 'pdb2'})
    assert first['changed'] and not first.get('failed'), first
    lease = k8s['admin'].call('GET', leases + '/polardb-lock-orders')[1]
    assert lease['spec']['holderIdentity'] == 'run-a' and lease['spec']['leaseDurationSeconds'] == 5
    second = lock(k8s, 'run-b', operation='failover')
    assert second.get('failed') and 'run run-a' in second['msg'] and 'switchover {to: pdb2}' in second['msg'], second
    # run-a dies: after its lease (by the API server's clock) the same operation resumes it, another is refused
    time.sleep(6)
    other = lock(k8s, 'run-b', operation='failover')
    assert other.get('failed') and 'only that operation may take it' in other['msg'], other
    resumed = lock(k8s, 'run-b')
    assert resumed['changed'] and resumed['lock']['params'] == {'to': 'pdb2'}, resumed
    assert resumed['lock']['transitions'] == 1
    released = lock(k8s, 'run-b', state='released')
    assert released['changed'], released
    assert k8s['admin'].call('GET', leases + '/polardb-lock-orders')[0] == 404


def test_two_concurrent_takers_one_wins(k8s):
    def argv(run):
        args = dict(cluster='twice', state='acquired', operation='switchover', store='kubernetes',
                    k8s_namespace=NAMESPACE, kubeconfig=k8s['reconciler'], owner=dict(run_id=run, controller='test', pid=1))
        return [os.path.join(VENV_BIN, 'ansible'), 'localhost', '-m', 'polardb.stack.operation_lock', '-a', json.dumps(args)]
    procs = [subprocess.Popen(argv(run), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=ansible_env())
             for run in ('run-x', 'run-y')]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    won = [o for o in outs if 'SUCCESS' in o or 'CHANGED' in o]
    lost = [o for o in outs if 'FAILED' in o]
    assert len(won) == 1 and len(lost) == 1, outs
    assert 'is locked on the Kubernetes API' in lost[0]
    holder = k8s['admin'].call('GET', '/apis/coordination.k8s.io/v1/namespaces/%s/leases/polardb-lock-twice'
                               % NAMESPACE)[1]['spec']['holderIdentity']
    assert holder in won[0]


def test_the_inventory_plugin_gives_the_playbooks_their_groups(k8s):
    declare(k8s, replicas=1, parameters={'work_mem': '32MB'})
    Api(k8s['reconciler']).call('PATCH', CLUSTERS + '/orders/status', dict(status=dict(
        rw='pdb2', instances=[dict(name='pdb2', role='rw'), dict(name='pdb1', role='replica')])),
        content_type='application/merge-patch+json')
    source = k8s['dir'] / 'orders.k8s.yml'
    source.write_text('plugin: polardb.stack.cluster_resources\nnamespaces: [%s]\nkubeconfig: %s\n'
                      % (NAMESPACE, k8s['reconciler']))
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', str(source), '--list'],
                          capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    inv = plain(json.loads(proc.stdout))
    # the RW from the status, one replica (spec.replicas=1): pdb3 is not a member
    assert sorted(inv['polardb_orders']['hosts']) == ['pdb1', 'pdb2']
    assert inv['role_rw']['hosts'] == ['pdb2'] and inv['role_replica']['hosts'] == ['pdb1']
    hv = inv['_meta']['hostvars']
    assert hv['pdb2']['ansible_host'] == '10.213.77.12' and hv['pdb2']['polardb_lun_wwid'] == NODES[1]['wwid']
    assert hv['pdb1']['polardb_parameters'] == {'work_mem': '32MB'} and hv['pdb1']['polardb_initial_primary'] == 'pdb1'
    # the playbooks reach the API server (the cluster's Lease) as the plugin did
    assert hv['pdb1']['polardb_k8s_kubeconfig'] == str(k8s['reconciler']) and 'polardb_k8s_context' not in hv['pdb1']
    # a token without the reconciler's role gets a clear error, not an empty inventory
    source.write_text('plugin: polardb.stack.cluster_resources\nnamespaces: [%s]\nkubeconfig: %s\n'
                      % (NAMESPACE, k8s['nobody']))
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-inventory'), '-i', str(source), '--list'],
                          capture_output=True, text=True, cwd=ROOT, env=dict(ansible_env(), ANSIBLE_INVENTORY_UNPARSED_FAILED='1'),
                          timeout=120, check=False)
    assert proc.returncode != 0 and 'HTTP 403' in proc.stderr, proc.stderr
