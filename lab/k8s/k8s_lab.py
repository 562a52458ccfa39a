"""The lab's Kubernetes control plane: etcd 3.6, kube-apiserver and
kube-controller-manager on 127.0.0.1, from the binaries lab/k8s/build.sh caches.
The API server also answers the lab's hosts, on the bridge's address
(HOSTS_ADDRESS): the cluster manager's agents use it in etcd's place. It listens
on every address of the machine for that (one --bind-address, and the bridge
may come up after it); TLS and a client certificate or token are required.

    k8s_lab.py up      start (or check) the control plane, write the kubeconfig
    k8s_lab.py down    stop it and remove its state (certificates, etcd data)
    k8s_lab.py env     print the KUBECONFIG line for a shell

No node, no kubelet: the engines run on the lab's hosts, the API server only
keeps the resources the collection reconciles. Client-certificate admin
kubeconfig (system:masters) for setting up; the tests bind a service account to
the collection's own ClusterRole and use its token. Lab only: etcd listens on
loopback without TLS.
"""

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
K8S_VERSION = os.environ.get('K8S_VERSION', 'v1.35.4')
ETCD_VERSION = os.environ.get('ETCD_VERSION', 'v3.6.16')
CACHE = os.environ.get('K8S_CACHE', '/var/cache/polardb-stack/k8s')
BIN = os.path.join(CACHE, '%s-etcd-%s' % (K8S_VERSION, ETCD_VERSION), 'bin')
STATE = os.environ.get('POLARDB_K8S_DIR', '/var/lib/polardb-stack-lab/k8s')
API_PORT = int(os.environ.get('POLARDB_K8S_PORT', '16443'))
ETCD_PORT = API_PORT - 4064  # 12379; its peer port is the next one
SERVER = 'https://127.0.0.1:%d' % API_PORT
# the lab bridge's address (lab/roles/lab/defaults: lab_bridge_address)
HOSTS_ADDRESS = os.environ.get('POLARDB_K8S_HOSTS_ADDRESS', '10.213.77.1')
KUBECONFIG = os.path.join(STATE, 'admin.kubeconfig')
READY_TIMEOUT = 60

started = time.monotonic()


def say(msg):
    print('[k8s +%.1fs] %s' % (time.monotonic() - started, msg), flush=True)


def path(*parts):
    return os.path.join(STATE, *parts)


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def certificates():
    """A CA, the API server's serving certificate for 127.0.0.1, an admin client
    certificate and the service-account signing key (openssl, once per state dir)."""
    pki = path('pki')
    if os.path.exists(os.path.join(pki, 'admin.crt')):
        return pki
    os.makedirs(pki, mode=0o700, exist_ok=True)
    os.chmod(pki, 0o700)
    ca = os.path.join(pki, 'ca')
    run('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', ca + '.key', '-out', ca + '.crt', '-days', '30', '-subj', '/CN=polardb-stack-lab-k8s-ca')

    def issue(name, subj, ext=None):
        key, csr, crt = (os.path.join(pki, name + s) for s in ('.key', '.csr', '.crt'))
        run('openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
            '-keyout', key, '-out', csr, '-subj', subj)
        cmd = ['openssl', 'x509', '-req', '-in', csr, '-CA', ca + '.crt', '-CAkey', ca + '.key',
               '-CAcreateserial', '-out', crt, '-days', '30']
        if ext:
            extfile = os.path.join(pki, name + '.ext')
            with open(extfile, 'w') as f:
                f.write(ext)
            cmd += ['-extfile', extfile]
        run(*cmd)

    issue('apiserver', '/CN=kube-apiserver',
          'subjectAltName=IP:127.0.0.1,IP:%s,DNS:localhost,DNS:kubernetes.default.svc\n'
          'extendedKeyUsage=serverAuth\n' % HOSTS_ADDRESS)
    issue('admin', '/O=system:masters/CN=polardb-stack-lab-admin', 'extendedKeyUsage=clientAuth\n')
    run('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
        '-out', os.path.join(pki, 'sa.key'))
    run('openssl', 'pkey', '-in', os.path.join(pki, 'sa.key'), '-pubout', '-out', os.path.join(pki, 'sa.pub'))
    return pki


def kubeconfig(pki):
    text = '''apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: {server}
    certificate-authority: {pki}/ca.crt
users:
- name: admin
  user:
    client-certificate: {pki}/admin.crt
    client-key: {pki}/admin.key
contexts:
- name: lab
  context:
    cluster: lab
    user: admin
    namespace: default
current-context: lab
'''.format(server=SERVER, pki=pki)
    fd = os.open(KUBECONFIG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)


def pid_of(name):
    try:
        with open(path(name + '.pid')) as f:
            pid = int(f.read())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(name, argv):
    if pid_of(name):
        return
    log = open(path(name + '.log'), 'ab')
    # a session of its own: the control plane outlives the shell (and the test) that started it
    proc = subprocess.Popen([os.path.join(BIN, argv[0])] + argv[1:], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=STATE)
    with open(path(name + '.pid'), 'w') as f:
        f.write('%d\n' % proc.pid)
    say('%s started (pid %d, log %s)' % (name, proc.pid, path(name + '.log')))


def get(url, pki, timeout=2):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, 'ca.crt'))
    ctx.load_cert_chain(os.path.join(pki, 'admin.crt'), os.path.join(pki, 'admin.key'))
    with urllib.request.urlopen(url, context=ctx, timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_ready(pki):
    deadline = time.monotonic() + READY_TIMEOUT
    last = None
    while time.monotonic() < deadline:
        try:
            status, body = get(SERVER + '/readyz', pki)
            if status == 200:
                return
            last = body
        except Exception as e:  # not listening yet, or not ready (500 with the failing checks)
            last = e
        for name in ('etcd', 'kube-apiserver'):
            if not pid_of(name):
                sys.exit('%s exited: see %s' % (name, path(name + '.log')))
        time.sleep(0.3)
    sys.exit('kube-apiserver not ready after %ss: %s (see %s)' % (READY_TIMEOUT, last, path('kube-apiserver.log')))


def wait_namespace(pki, name='default'):
    # the default namespace and the bootstrap RBAC roles exist once the API server finished its post-start hooks
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            get(SERVER + '/api/v1/namespaces/' + name, pki)
            return
        except Exception:
            time.sleep(0.3)
    sys.exit('namespace %s never appeared' % name)


def up():
    for b in ('etcd', 'kube-apiserver', 'kube-controller-manager'):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit('%s is not built: run lab/k8s/build.sh (K8S_VERSION=%s ETCD_VERSION=%s)'
                     % (os.path.join(BIN, b), K8S_VERSION, ETCD_VERSION))
    os.makedirs(STATE, mode=0o700, exist_ok=True)
    pki = certificates()
    kubeconfig(pki)
    start('etcd', [
        'etcd', '--name', 'lab', '--data-dir', path('etcd-data'),
        '--listen-client-urls', 'http://127.0.0.1:%d' % ETCD_PORT,
        '--advertise-client-urls', 'http://127.0.0.1:%d' % ETCD_PORT,
        '--listen-peer-urls', 'http://127.0.0.1:%d' % (ETCD_PORT + 1),
        '--initial-advertise-peer-urls', 'http://127.0.0.1:%d' % (ETCD_PORT + 1),
        '--initial-cluster', 'lab=http://127.0.0.1:%d' % (ETCD_PORT + 1),
        '--listen-metrics-urls', '', '--log-level', 'warn',
        # the lab's control plane holds a few dozen objects: no need for etcd's default 64 MB in-memory WAL buffer
        '--snapshot-count', '10000', '--unsafe-no-fsync'])
    start('kube-apiserver', [
        'kube-apiserver',
        '--etcd-servers', 'http://127.0.0.1:%d' % ETCD_PORT,
        '--bind-address', '0.0.0.0', '--advertise-address', '127.0.0.1', '--secure-port', str(API_PORT),
        '--tls-cert-file', pki + '/apiserver.crt', '--tls-private-key-file', pki + '/apiserver.key',
        '--client-ca-file', pki + '/ca.crt',
        '--service-account-key-file', pki + '/sa.pub', '--service-account-signing-key-file', pki + '/sa.key',
        '--service-account-issuer', SERVER,
        '--authorization-mode', 'RBAC', '--anonymous-auth=false',
        '--service-cluster-ip-range', '10.96.0.0/24', '--allow-privileged=false',
        '--enable-priority-and-fairness=false', '--v', '1'])
    start('kube-controller-manager', [
        'kube-controller-manager',
        '--kubeconfig', KUBECONFIG, '--authentication-kubeconfig', KUBECONFIG,
        '--authorization-kubeconfig', KUBECONFIG,
        '--service-account-private-key-file', pki + '/sa.key', '--root-ca-file', pki + '/ca.crt',
        '--bind-address', '127.0.0.1', '--secure-port', str(API_PORT + 1), '--leader-elect=false',
        # garbage collection and namespace deletion are what the tests need; no nodes, no pods
        '--controllers', 'garbagecollector,namespace,serviceaccount,serviceaccount-token',
        '--v', '1'])
    wait_ready(pki)
    wait_namespace(pki)
    say('ready: %s, KUBECONFIG=%s' % (SERVER, KUBECONFIG))


def down():
    for name in ('kube-controller-manager', 'kube-apiserver', 'etcd'):
        pid = pid_of(name)
        if pid:
            os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid_of(name) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_of(name):
                os.killpg(pid, signal.SIGKILL)
            say('%s stopped' % name)
    subprocess.run(['rm', '-rf', STATE], check=True)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else 'up'
    if cmd == 'up':
        up()
    elif cmd == 'down':
        down()
    elif cmd == 'env':
        print('export KUBECONFIG=%s' % KUBECONFIG)
    elif cmd == 'status':
        print(json.dumps({n: pid_of(n) for n in ('etcd', 'kube-apiserver', 'kube-controller-manager')}))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv)
