"""The lab's Kubernetes control plane for tests: started by lab/k8s/k8s_lab.py,
set up by playbooks/k8s_setup.yml, used through service-account tokens bound
only to the collection's ClusterRoles (so a missing permission fails a test)."""
import base64
import calendar
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import yaml

from labtools import ROOT, VENV_BIN

K8S_LAB = os.path.join(ROOT, 'lab', 'k8s', 'k8s_lab.py')
STATE = os.environ.get('POLARDB_K8S_DIR', '/var/lib/polardb-stack-lab/k8s')
ADMIN_KUBECONFIG = os.path.join(STATE, 'admin.kubeconfig')
NAMESPACE = 'polardb-test'


def k8s_lab(command, env=None):
    """lab/k8s/k8s_lab.py COMMAND; ``env`` adds POLARDB_K8S_DIR / POLARDB_K8S_PORT for a second control plane."""
    proc = subprocess.run([os.path.join(VENV_BIN, 'python'), K8S_LAB, command], capture_output=True, text=True,
                          timeout=180, check=False, env=dict(os.environ, **(env or {})))
    assert proc.returncode == 0, '%s %s:\n%s%s' % (K8S_LAB, command, proc.stdout, proc.stderr)
    return proc.stdout


class Api(object):
    """Plain HTTPS requests as one identity (a kubeconfig's user): what a test checks
    must not go through the code under test."""

    def __init__(self, kubeconfig):
        with open(kubeconfig) as f:
            conf = yaml.safe_load(f)
        cluster = conf['clusters'][0]['cluster']
        user = conf['users'][0]['user']
        self.server = cluster['server']
        self.kubeconfig = kubeconfig
        self.ctx = ssl.create_default_context(cafile=cluster['certificate-authority'])
        self.headers = {}
        if user.get('token'):
            self.headers['Authorization'] = 'Bearer ' + user['token']
        else:
            self.ctx.load_cert_chain(user['client-certificate'], user['client-key'])

    def call(self, method, path, body=None, content_type='application/json', accept='application/json'):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method,
                                     headers=dict(self.headers, **{'Content-Type': content_type, 'Accept': accept}))
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=15) as r:
                return r.status, json.loads(r.read() or b'{}')
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b'{}')


def service_account_kubeconfig(admin, namespace, name, path, cluster_role=None):
    """A service account in ``namespace`` (bound to ``cluster_role`` there, if given),
    a token for it from the TokenRequest API, and a kubeconfig that uses it."""
    admin.call('POST', '/api/v1/namespaces/%s/serviceaccounts' % namespace,
               dict(metadata=dict(name=name)))
    if cluster_role:
        admin.call('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings' % namespace, dict(
            metadata=dict(name=name),
            roleRef=dict(apiGroup='rbac.authorization.k8s.io', kind='ClusterRole', name=cluster_role),
            subjects=[dict(kind='ServiceAccount', name=name, namespace=namespace)]))
    status, answer = admin.call('POST', '/api/v1/namespaces/%s/serviceaccounts/%s/token' % (namespace, name),
                                dict(spec=dict(expirationSeconds=3600)))
    assert status == 201, answer
    token = answer['status']['token']
    with open(admin.kubeconfig) as f:
        conf = yaml.safe_load(f)
    conf['users'] = [dict(name=name, user=dict(token=token))]
    context = dict(cluster=conf['clusters'][0]['name'], user=name, namespace=namespace)
    conf['contexts'] = [dict(name='sa', context=context)]
    conf['current-context'] = 'sa'
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        yaml.safe_dump(conf, f)
    return path


def jwt_subject(kubeconfig):
    with open(kubeconfig) as f:
        token = yaml.safe_load(f)['users'][0]['user']['token']
    payload = token.split('.')[1]
    return json.loads(base64.urlsafe_b64decode(payload + '=' * (-len(payload) % 4)))['sub']


def ansible_env():
    """The environment of an ansible command the tests read as text: no colour (make exports ANSIBLE_FORCE_COLOR=1)."""
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), ANSIBLE_FORCE_COLOR='0',
                ANSIBLE_NOCOLOR='1', PATH=VENV_BIN + os.pathsep + os.environ['PATH'])


def setup_namespace(admin_kubeconfig, namespace, directory):
    """playbooks/k8s_setup.yml for ``namespace`` (as the admin), then kubeconfigs of the reconciler's
    service account it made and of an account bound to polardb-stack-editor only."""
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-playbook'), 'playbooks/k8s_setup.yml',
                           '-e', 'polardb_k8s_namespace=' + namespace, '-e', 'polardb_k8s_kubeconfig=' + admin_kubeconfig],
                          capture_output=True, text=True, cwd=ROOT, env=ansible_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    admin = Api(admin_kubeconfig)
    return dict(admin=admin, reconciler=service_account_kubeconfig(admin, namespace, 'polardb-stack-reconciler',
                                                                   os.path.join(str(directory), 'reconciler')),
                editor=service_account_kubeconfig(admin, namespace, 'declarer', os.path.join(str(directory), 'editor'),
                                                  'polardb-stack-editor'))


def ha_store(env, namespace, directory, hosts_address='10.213.77.1'):
    """A control plane of its own (``env``: its port and directory) for the cluster manager
    with the Kubernetes API in etcd's place: k8s_setup.yml for ``namespace``, a token of
    service account polardb-stack-ha-agent (TokenRequest API), and an extra-vars file
    (0600) that gives the playbooks polardb_ha_store: kubernetes.
    {admin (Api), token, server (as the lab's hosts reach it), vars (-e @file)}."""
    k8s_lab('up', env=env)
    admin_kubeconfig = os.path.join(env['POLARDB_K8S_DIR'], 'admin.kubeconfig')
    setup_namespace(admin_kubeconfig, namespace, directory)
    admin = Api(admin_kubeconfig)
    status, answer = admin.call('POST', '/api/v1/namespaces/%s/serviceaccounts/polardb-stack-ha-agent/token'
                                % namespace, dict(spec=dict(expirationSeconds=3600 * 6)))
    assert status == 201, answer
    server = 'https://%s:%s' % (hosts_address, env['POLARDB_K8S_PORT'])
    path = os.path.join(str(directory), 'ha-k8s.json')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        json.dump(dict(polardb_ha_store='kubernetes', polardb_ha_k8s_server=server, polardb_ha_k8s_namespace=namespace,
                       polardb_ha_k8s_token=answer['status']['token'],
                       polardb_ha_k8s_ca_file=os.path.join(env['POLARDB_K8S_DIR'], 'pki', 'ca.crt')), f)
    return dict(admin=admin, token=answer['status']['token'], server=server, vars=('-e', '@' + path))


def items(admin, namespace, resource):
    group = 'api/v1' if resource == 'configmaps' else 'apis/coordination.k8s.io/v1'
    status, answer = admin.call('GET', '/%s/namespaces/%s/%s' % (group, namespace, resource))
    assert status == 200, answer
    return answer['items']


def ha_leases(admin, namespace):
    """{name: Lease} of the cluster manager's agents in ``namespace``."""
    return dict((o['metadata']['name'], o) for o in items(admin, namespace, 'leases')
                if o['metadata']['name'].startswith('polardb-ha-lease-'))


def renewed_ago(lease):
    stamp, dummy, frac = lease['spec']['renewTime'].rstrip('Z').partition('.')
    return time.time() - calendar.timegm(time.strptime(stamp, '%Y-%m-%dT%H:%M:%S')) - float('0.' + (frac or '0'))


def ha_keys(admin, namespace, prefix):
    """{key under ``prefix``: value} of the cluster manager's ConfigMaps whose Lease (if any) was
    renewed within its duration plus a second (the lab's hosts and API server share the machine's clock),
    read straight from the API server."""
    live = set(name for name, lease in ha_leases(admin, namespace).items()
               if renewed_ago(lease) <= lease['spec']['leaseDurationSeconds'] + 1)
    out = {}
    for cm in items(admin, namespace, 'configmaps'):
        ann = cm['metadata'].get('annotations') or {}
        key, lease = ann.get('stack.polardb.io/key', ''), int(ann.get('stack.polardb.io/lease') or 0)
        if key.startswith(prefix) and (not lease or 'polardb-ha-lease-%x' % lease in live):
            out[key[len(prefix):]] = json.loads(cm['data']['value'])
    return out
