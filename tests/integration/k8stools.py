"""The lab's Kubernetes control plane for tests: started by lab/k8s/k8s_lab.py,
set up by playbooks/k8s_setup.yml, used through service-account tokens bound
only to the collection's ClusterRoles (so a missing permission fails a test)."""
import base64
import json
import os
import ssl
import subprocess
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
