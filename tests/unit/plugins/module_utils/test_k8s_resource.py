# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.polardb.stack.plugins.module_utils import k8s_resource

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..', '..'))

NODES = [dict(name='pdb1', host='10.0.0.11', wwid='600a0001'),
         dict(name='pdb2', host='10.0.0.12', wwid='600a0002'),
         dict(name='pdb3', host='10.0.0.13', wwid='600a0003', port=5433),
         dict(name='dr1', host='10.9.0.11', wwid='600a0009', standby=True)]


def obj(spec, status=None, name='orders', generation=1):
    return dict(metadata=dict(name=name, namespace='db', generation=generation, uid='u-' + name),
                spec=spec, status=status or {})


def test_members_take_the_rw_the_first_replicas_and_every_standby():
    spec = dict(primary='pdb1', replicas=1, nodes=NODES)
    assert [(m['name'], m['role']) for m in k8s_resource.members(spec)] == \
        [('pdb1', 'primary'), ('pdb2', 'replica'), ('dr1', 'standby')]
    # the engines say pdb2 is the RW: pdb1 becomes the replica, pdb3 stays out
    assert [(m['name'], m['role']) for m in k8s_resource.members(spec, rw='pdb2')] == \
        [('pdb1', 'replica'), ('pdb2', 'primary'), ('dr1', 'standby')]
    spec['replicas'] = 2
    assert [m['port'] for m in k8s_resource.members(spec)] == [5432, 5432, 5433, 5432]


def test_update_patch_removes_parameters_left_out():
    existing = obj(dict(primary='pdb1', nodes=NODES, parameters={'work_mem': '8MB', 'max_connections': 100}))
    desired = k8s_resource.definition('orders', 'db', dict(parameters={'work_mem': '16MB'}))
    patch = k8s_resource.update_patch(existing, desired)
    assert patch['spec']['parameters'] == {'work_mem': '16MB', 'max_connections': None}
    assert 'apiVersion' not in patch


def test_spec_changes_ignore_options_not_given_and_equal_values():
    defaulted = [dict(n, port=n.get('port', 5432), standby=n.get('standby', False)) for n in NODES]
    existing = obj(dict(primary='pdb1', replicas=1, nodes=defaulted, parameters={'max_connections': 100}))
    same = k8s_resource.definition('orders', 'db', k8s_resource.spec_from_options(
        dict(primary='pdb1', nodes=NODES, parameters={'max_connections': '100'})))
    assert k8s_resource.spec_changes(existing, same) == []
    moved = k8s_resource.definition('orders', 'db', k8s_resource.spec_from_options(dict(primary='pdb2', replicas=2)))
    assert k8s_resource.spec_changes(existing, moved) == ['primary', 'replicas']


def test_phase_reached_needs_the_current_generation():
    o = obj(dict(primary='pdb1', nodes=NODES), dict(phase='Running', observedGeneration=1), generation=2)
    assert not k8s_resource.phase_reached(o, 'Running')
    o['status']['observedGeneration'] = 2
    assert k8s_resource.phase_reached(o, 'Running')
    assert not k8s_resource.phase_reached({}, 'Running')


def test_inventory_groups_and_roles_from_the_live_status():
    spec = dict(primary='pdb1', replicas=1, nodes=NODES, parameters={'work_mem': '16MB'}, engineVersion='15.14-0+deb12u1')
    status = dict(rw='pdb2', instances=[dict(name='pdb2', role='rw'), dict(name='pdb1', role='replica')])
    inv = k8s_resource.inventory([obj(spec, status, name='orders-eu')])
    assert inv['groups']['polardb_orders_eu'] == ['pdb1', 'pdb2', 'dr1']
    assert inv['groups']['role_rw'] == ['pdb2'] and inv['groups']['role_standby'] == ['dr1']
    assert inv['hosts']['pdb2'] == dict(ansible_host='10.0.0.12', polardb_lun_wwid='600a0002', polardb_port=5432,
                                        polardb_k8s_role='rw')
    assert inv['hosts']['pdb1']['polardb_node_role'] == 'replica'
    gv = inv['group_vars']['polardb_orders_eu']
    assert gv['polardb_cluster'] == 'orders_eu' and gv['polardb_initial_primary'] == 'pdb1'
    assert gv['polardb_engine_version'] == '15.14-0+deb12u1' and gv['polardb_parameters'] == {'work_mem': '16MB'}
    assert gv['polardb_k8s_resource']['namespace'] == 'db'


def test_a_node_spec_replicas_leaves_out_stays_in_the_inventory_while_it_runs():
    spec = dict(primary='pdb1', replicas=1, nodes=NODES[:3])
    running = dict(rw='pdb1', instances=[dict(name='pdb1', role='rw', state='running'),
                                         dict(name='pdb2', role='replica', state='streaming'),
                                         dict(name='pdb3', role='replica', state='streaming')])
    inv = k8s_resource.inventory([obj(spec, running)])
    assert inv['groups']['polardb_orders'] == ['pdb1', 'pdb2', 'pdb3']
    assert inv['hosts']['pdb3']['polardb_k8s_leaving'] is True and 'polardb_k8s_leaving' not in inv['hosts']['pdb2']
    assert inv['hosts']['pdb3']['polardb_lun_wwid'] == '600a0003'
    # once the status no longer lists it running (reconcile removed it), it is out
    removed = dict(running, instances=running['instances'][:2])
    assert k8s_resource.inventory([obj(spec, removed)])['groups']['polardb_orders'] == ['pdb1', 'pdb2']
    gone = dict(running, instances=running['instances'][:2] + [dict(name='pdb3', role='none', state='unreachable')])
    assert k8s_resource.inventory([obj(spec, gone)])['groups']['polardb_orders'] == ['pdb1', 'pdb2']


def test_inventory_refuses_a_node_name_two_clusters_use():
    spec = dict(primary='pdb1', nodes=NODES[:1])
    with pytest.raises(ValueError) as e:
        k8s_resource.inventory([obj(spec, name='a'), obj(spec, name='b')])
    assert 'node name pdb1 is used by clusters a and b' in str(e.value)


def test_crd_class_enum_is_the_class_catalog():
    with open(os.path.join(ROOT, 'roles', 'k8s_api', 'files', 'polardbcluster-crd.yml')) as f:
        crd = yaml.safe_load(f)
    with open(os.path.join(ROOT, 'roles', 'common', 'defaults', 'main.yml')) as f:
        defaults = yaml.safe_load(f)
    spec = crd['spec']['versions'][0]['schema']['openAPIV3Schema']['properties']['spec']['properties']
    assert spec['class']['enum'] == list(defaults['polardb_instance_classes'])
    assert crd['spec']['versions'][0]['schema']['openAPIV3Schema']['properties']['status']['properties']['phase']['enum'] \
        == list(k8s_resource.PHASES)


def test_status_changes_ignore_the_live_readings_only():
    old = dict(status=dict(phase='Running', rw='pdb1', heartbeat='2026-12-03T10:00:00Z', instances=[
        dict(name='pdb1', role='rw', state='running', timeline=3),
        dict(name='pdb2', role='replica', state='streaming', timeline=3, lagBytes=0)]))
    # a converged cluster under writes: only the heartbeat and a replica's lag moved
    live = dict(phase='Running', rw='pdb1', heartbeat='2026-12-03T10:01:00Z', instances=[
        dict(name='pdb1', role='rw', state='running', timeline=3),
        dict(name='pdb2', role='replica', state='streaming', timeline=3, lagBytes=8192)])
    assert k8s_resource.status_changes(old, live) == []
    stopped = dict(live, instances=[live['instances'][0], dict(live['instances'][1], state='not streaming')])
    assert k8s_resource.status_changes(old, stopped) == ['instances']
    assert k8s_resource.status_changes(old, dict(live, rw='pdb2', phase='Degraded')) == ['phase', 'rw']
    assert k8s_resource.status_changes({}, dict(heartbeat='x')) == []
