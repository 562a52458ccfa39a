# Copyright: polardb.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab-array: the SAN array of the polardb.stack lab.

A small FUSE file system serves each LUN's backing file at MOUNT/<host>/<lun>
for every host the LUN is mapped to; the lab attaches one loop device per
host and LUN to that path.  Every read and write of a host goes through here,
so the array can refuse one host's writes to one LUN with EIO, at once, even
under a mounted file system or O_DIRECT.

Access is modelled on SCSI-3 persistent reservations: per LUN a set of
registrations {initiator host: key} and an optional reservation
{holder, key, type}; plus an administrative fence (``fence HOST LUN``) that
refuses a host's writes whatever the reservations say.  The state lives in
one JSON file (written atomically under a lock); the server re-reads it
whenever it changes, so a CLI call takes effect on the next I/O.

Subcommands: serve, status, fence, unfence, register, reserve, release,
preempt, clear, check, grow.  ``serve`` also answers HTTP+JSON on the bridge
(default 10.213.77.1:8790) and names the caller by its source address.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import json
import os
import stat
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE_DIR = '/var/lib/polardb-stack-lab/array'
DEFAULT_CONFIG = os.path.join(STATE_DIR, 'config.json')
DEFAULT_STATE = os.path.join(STATE_DIR, 'reservations.json')

# SCSI-3 PR types (SPC-4 names, lower case with dashes).
TYPES = (
    'write-exclusive',
    'exclusive-access',
    'write-exclusive-registrants-only',
    'exclusive-access-registrants-only',
    'write-exclusive-all-registrants',
    'exclusive-access-all-registrants',
)
ALL_REGISTRANTS = ('write-exclusive-all-registrants', 'exclusive-access-all-registrants')


class ArrayError(Exception):
    """A refused request; ``code`` is the CLI exit status / HTTP status."""

    def __init__(self, msg, code=2, http=409):
        super().__init__(msg)
        self.code = code
        self.http = http


# --------------------------------------------------------------------------
# configuration and state files
# --------------------------------------------------------------------------

def load_json(path, default):
    try:
        with open(path, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def write_json_atomic(path, data):
    """Write JSON so that a reader sees the old or the new file, never half."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write('\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def normalize_key(key):
    """Accept 0x-hex or decimal (an int or a string); return '0x...' lower case."""
    if isinstance(key, int):
        value = key
    else:
        text = str(key).strip().lower()
        try:
            value = int(text, 16) if text.startswith('0x') else int(text)
        except ValueError:
            raise ArrayError('invalid reservation key %r' % key, code=1, http=400) from None
    if value < 0 or value >= 1 << 64:
        raise ArrayError('reservation key out of range: %r' % key, code=1, http=400)
    return '0x%x' % value


def resolve_lun(config, name):
    """A LUN by its name or WWID (with or without 0x / naa. / wwn-0x)."""
    luns = config.get('luns', {})
    if name in luns:
        return name
    bare = name.lower()
    for prefix in ('wwn-0x', '0x', 'naa.'):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
    for lun, spec in luns.items():
        if spec.get('wwid', '').lower() == bare:
            return lun
    raise ArrayError('unknown LUN %r' % name, code=1, http=404)


def loop_devices_of(lun):
    """/dev/loopN of every host mapping ``lun`` (their backing files are MOUNT/<host>/<lun>)."""
    out = []
    for name in sorted(os.listdir('/sys/block')):
        try:
            with open('/sys/block/%s/loop/backing_file' % name, encoding='utf-8') as handle:
                backing = handle.read().rstrip('\n')
        except OSError:
            continue
        if os.path.basename(backing) == lun:
            out.append('/dev/' + name)
    return out


def grow(config, name, size):
    """Grow a LUN to ``size`` bytes, as an array does: the backing file, then
    every host's loop device on it re-reads its capacity (what a SCSI rescan
    does on a real host). Never shrinks."""
    import subprocess  # pylint: disable=import-outside-toplevel
    lun = resolve_lun(config, name)
    path = config['luns'][lun]['file']
    before = os.path.getsize(path)
    if size < before:
        raise ArrayError('LUN %s has %d bytes: refusing to shrink it to %d' % (lun, before, size), code=1)
    if size > before:
        os.truncate(path, size)
    devices = loop_devices_of(lun)
    for dev in devices:
        subprocess.run(['losetup', '-c', dev], check=True)
    return {'lun': lun, 'wwid': config['luns'][lun].get('wwid'), 'bytes_before': before, 'bytes': size,
            'changed': size > before, 'loop_devices': devices}


def lun_state(state, lun):
    entry = state.setdefault('luns', {}).setdefault(lun, {})
    entry.setdefault('registrations', {})
    entry.setdefault('reservation', None)
    entry.setdefault('fenced', [])
    return entry


# --------------------------------------------------------------------------
# access decisions (pure functions of one LUN's state)
# --------------------------------------------------------------------------

def may_write(entry, host):
    if entry and host in entry.get('fenced', []):
        return False
    reservation = (entry or {}).get('reservation')
    if not reservation:
        return True
    kind = reservation['type']
    if kind in ('write-exclusive', 'exclusive-access'):
        return reservation.get('holder') == host
    return host in entry.get('registrations', {})


def may_read(entry, host):
    reservation = (entry or {}).get('reservation')
    if not reservation or reservation['type'].startswith('write-exclusive'):
        return True
    if reservation['type'] == 'exclusive-access':
        return reservation.get('holder') == host
    return host in entry.get('registrations', {})


def holds(entry, host):
    reservation = entry.get('reservation')
    if not reservation:
        return False
    if reservation['type'] in ALL_REGISTRANTS:
        return host in entry['registrations']
    return reservation.get('holder') == host


# --------------------------------------------------------------------------
# persistent-reservation service actions; each returns True if it changed
# --------------------------------------------------------------------------

def _require_key(entry, host, key):
    registered = entry['registrations'].get(host)
    if registered is None:
        raise ArrayError('RESERVATION CONFLICT: %s is not registered' % host)
    if registered != key:
        raise ArrayError('RESERVATION CONFLICT: %s is registered with another key' % host)


def pr_register(entry, host, key):
    """REGISTER AND IGNORE EXISTING KEY; key 0 unregisters."""
    key = normalize_key(key)
    regs = entry['registrations']
    if key == '0x0':
        if host not in regs:
            return False
        del regs[host]
        reservation = entry['reservation']
        if reservation:
            # an all-registrants reservation lives while anyone is registered;
            # the others go with their holder
            if reservation['type'] in ALL_REGISTRANTS:
                if not regs:
                    entry['reservation'] = None
            elif reservation.get('holder') == host:
                entry['reservation'] = None
        return True
    if regs.get(host) == key:
        return False
    regs[host] = key
    return True


def pr_reserve(entry, host, key, kind):
    key = normalize_key(key)
    if kind not in TYPES:
        raise ArrayError('unknown reservation type %r' % kind, code=1, http=400)
    _require_key(entry, host, key)
    reservation = entry['reservation']
    if reservation:
        if holds(entry, host) and reservation['type'] == kind:
            return False
        raise ArrayError('RESERVATION CONFLICT: %s holds a %s reservation'
                         % (reservation.get('holder'), reservation['type']))
    entry['reservation'] = {'holder': host, 'key': key, 'type': kind}
    return True


def pr_release(entry, host, key):
    key = normalize_key(key)
    _require_key(entry, host, key)
    if not holds(entry, host):
        return False
    entry['reservation'] = None
    return True


def pr_preempt(entry, host, key, victim_key, kind):
    """PREEMPT: drop every registration with victim_key; take the reservation
    if it was held with that key (or none is held)."""
    key = normalize_key(key)
    victim_key = normalize_key(victim_key)
    if kind not in TYPES:
        raise ArrayError('unknown reservation type %r' % kind, code=1, http=400)
    _require_key(entry, host, key)
    regs = entry['registrations']
    victims = [h for h, k in regs.items() if k == victim_key and h != host]
    for victim in victims:
        del regs[victim]
    reservation = entry['reservation']
    changed = bool(victims)
    if reservation is None or reservation.get('key') == victim_key or \
            (reservation['type'] in ALL_REGISTRANTS and victim_key == '0x0'):
        new = {'holder': host, 'key': key, 'type': kind}
        if reservation != new:
            entry['reservation'] = new
            changed = True
    return changed


def pr_clear(entry, host, key):
    key = normalize_key(key)
    _require_key(entry, host, key)
    changed = bool(entry['registrations']) or entry['reservation'] is not None
    entry['registrations'] = {}
    entry['reservation'] = None
    return changed


def admin_fence(entry, host, fenced):
    hosts = set(entry['fenced'])
    before = set(hosts)
    if fenced:
        hosts.add(host)
    else:
        hosts.discard(host)
    entry['fenced'] = sorted(hosts)
    return hosts != before


# --------------------------------------------------------------------------
# one locked read-modify-write of the state file
# --------------------------------------------------------------------------

class Store:
    def __init__(self, config_path, state_path):
        self.config_path = config_path
        self.state_path = state_path

    def config(self):
        return load_json(self.config_path, {'hosts': {}, 'luns': {}})

    def read(self):
        return load_json(self.state_path, {'version': 1, 'luns': {}})

    def apply(self, action, host, lun, **kwargs):
        config = self.config()
        lun = resolve_lun(config, lun)
        if host not in config.get('luns', {}).get(lun, {}).get('hosts', []):
            raise ArrayError('LUN %s is not mapped to host %s' % (lun, host), code=1, http=403)
        os.makedirs(os.path.dirname(self.state_path), exist_ok=True)
        with open(self.state_path + '.lock', 'a', encoding='utf-8') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read()
            entry = lun_state(state, lun)
            changed = ACTIONS[action](entry, host, **kwargs)
            if changed:
                write_json_atomic(self.state_path, state)
        return {'changed': changed, 'lun': lun, 'host': host, 'action': action,
                'state': entry, 'write_allowed': may_write(entry, host)}

    def status(self, host=None):
        config = self.config()
        state = self.read()
        out = {}
        for lun, spec in sorted(config.get('luns', {}).items()):
            if host is not None and host not in spec.get('hosts', []):
                continue
            entry = lun_state(state, lun)
            out[lun] = {
                'wwid': spec.get('wwid'),
                'hosts': spec.get('hosts', []),
                'registrations': entry['registrations'],
                'reservation': entry['reservation'],
                'fenced': entry['fenced'],
                'write_allowed': {h: may_write(entry, h) for h in spec.get('hosts', [])},
            }
        return out


ACTIONS = {
    'register': pr_register,
    'reserve': pr_reserve,
    'release': pr_release,
    'preempt': pr_preempt,
    'clear': pr_clear,
    'fence': lambda entry, host: admin_fence(entry, host, True),
    'unfence': lambda entry, host: admin_fence(entry, host, False),
}


# --------------------------------------------------------------------------
# the FUSE file system
# --------------------------------------------------------------------------

class Snapshot:
    """Re-read a JSON file when its identity (inode, mtime, size) changes:
    one stat per I/O, so a CLI change applies to the very next write."""

    def __init__(self, path, default):
        self.path = path
        self.default = default
        self.ident = None
        self.data = default
        self.lock = threading.Lock()

    def get(self):
        try:
            st = os.stat(self.path)
            ident = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            ident = None
        if ident != self.ident:
            with self.lock:
                if ident != self.ident:
                    self.data = load_json(self.path, self.default)
                    self.ident = ident
        return self.data


def make_filesystem(mfusepy, config_path, state_path):
    """Build the Operations class (mfusepy is imported only by ``serve``)."""

    class ArrayFS(mfusepy.Operations):
        use_ns = True

        def __init__(self):
            self.config = Snapshot(config_path, {'hosts': {}, 'luns': {}})
            self.state = Snapshot(state_path, {'luns': {}})
            self.handles = {}
            self.next_fh = 1
            self.fh_lock = threading.Lock()
            self.started = time.time_ns()

        def _split(self, path):
            parts = [p for p in path.split('/') if p]
            config = self.config.get()
            if not parts:
                return config, None, None
            host = parts[0]
            if host not in config.get('hosts', {}) or len(parts) > 2:
                raise mfusepy.FuseOSError(errno.ENOENT)
            if len(parts) == 1:
                return config, host, None
            lun = parts[1]
            if host not in config.get('luns', {}).get(lun, {}).get('hosts', []):
                raise mfusepy.FuseOSError(errno.ENOENT)
            return config, host, lun

        def _dir(self):
            return {'st_mode': stat.S_IFDIR | 0o755, 'st_nlink': 2, 'st_uid': 0, 'st_gid': 0,
                    'st_atime': self.started, 'st_mtime': self.started, 'st_ctime': self.started}

        def getattr(self, path, fh=None):
            config, _host, lun = self._split(path)
            if lun is None:
                return self._dir()
            try:
                st = os.stat(config['luns'][lun]['file'])
            except FileNotFoundError:
                raise mfusepy.FuseOSError(errno.ENOENT) from None
            return {'st_mode': stat.S_IFREG | 0o600, 'st_nlink': 1, 'st_uid': 0, 'st_gid': 0,
                    'st_size': st.st_size, 'st_blocks': st.st_blocks,
                    'st_atime': st.st_atime_ns, 'st_mtime': st.st_mtime_ns, 'st_ctime': st.st_ctime_ns}

        def readdir(self, path, fh):
            config, host, lun = self._split(path)
            if lun is not None:
                raise mfusepy.FuseOSError(errno.ENOTDIR)
            if host is None:
                names = sorted(config.get('hosts', {}))
            else:
                names = sorted(n for n, s in config.get('luns', {}).items() if host in s.get('hosts', []))
            return ['.', '..'] + names

        def open(self, path, fi):
            config, host, lun = self._split(path)
            if lun is None:
                raise mfusepy.FuseOSError(errno.EISDIR)
            fd = os.open(config['luns'][lun]['file'], os.O_RDWR | os.O_CLOEXEC)
            with self.fh_lock:
                fh = self.next_fh
                self.next_fh += 1
                self.handles[fh] = (fd, host, lun)
            fi.fh = fh
            # No page cache in the kernel for array files: every host's I/O
            # reaches the array (a shared LUN must not be served stale).
            fi.direct_io = 1
            return 0

        def _entry(self, lun):
            return self.state.get().get('luns', {}).get(lun)

        def read(self, path, size, offset, fh):
            fd, host, lun = self.handles[fh.fh]
            if not may_read(self._entry(lun), host):
                raise mfusepy.FuseOSError(errno.EIO)
            return os.pread(fd, size, offset)

        def write(self, path, data, offset, fh):
            fd, host, lun = self.handles[fh.fh]
            if not may_write(self._entry(lun), host):
                raise mfusepy.FuseOSError(errno.EIO)
            return os.pwrite(fd, data, offset)

        def fsync(self, path, datasync, fh):
            # The array's cache is "battery backed": a flush is acknowledged
            # from it, but a fenced host's flush fails like its writes.
            _fd, host, lun = self.handles[fh.fh]
            if not may_write(self._entry(lun), host):
                raise mfusepy.FuseOSError(errno.EIO)
            return 0

        def flush(self, path, fh):
            return 0

        def release(self, path, fh):
            with self.fh_lock:
                fd, _host, _lun = self.handles.pop(fh.fh)
            os.close(fd)
            return 0

        def truncate(self, path, length, fh=None):
            raise mfusepy.FuseOSError(errno.EPERM)

        def statfs(self, path):
            return {'f_bsize': 4096, 'f_frsize': 4096, 'f_blocks': 0, 'f_bfree': 0,
                    'f_bavail': 0, 'f_files': 0, 'f_ffree': 0, 'f_namemax': 255}

    return ArrayFS()


# --------------------------------------------------------------------------
# the HTTP control endpoint (hosts call it over the bridge)
# --------------------------------------------------------------------------

def make_http_handler(store):
    class Handler(BaseHTTPRequestHandler):
        server_version = 'lab-array/1'

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            sys.stderr.write('http %s %s\n' % (self.client_address[0], format % args))

        def _caller(self):
            address = self.client_address[0]
            for host, ip in store.config().get('hosts', {}).items():
                if ip == address:
                    return host
            raise ArrayError('unknown initiator %s' % address, http=403)

        def _reply(self, code, body):
            data = (json.dumps(body, indent=2, sort_keys=True) + '\n').encode()
            self.send_response(code)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            try:
                host = self._caller()
                if self.path.rstrip('/') not in ('/v1/status', '/v1/luns'):
                    raise ArrayError('not found: %s' % self.path, http=404)
                self._reply(200, {'host': host, 'luns': store.status(host)})
            except ArrayError as exc:
                self._reply(exc.http, {'error': str(exc)})

        def do_POST(self):  # noqa: N802
            try:
                host = self._caller()
                prefix = '/v1/pr/'
                action = self.path[len(prefix):].strip('/') if self.path.startswith(prefix) else ''
                if action not in ('register', 'reserve', 'release', 'preempt', 'clear'):
                    raise ArrayError('not found: %s' % self.path, http=404)
                length = int(self.headers.get('Content-Length') or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b'{}')
                except ValueError:
                    raise ArrayError('body is not JSON', http=400) from None
                kwargs = {'key': body.get('key', '0')}
                if action in ('reserve', 'preempt'):
                    kwargs['kind'] = body.get('type', 'write-exclusive-all-registrants')
                if action == 'preempt':
                    kwargs['victim_key'] = body.get('victim_key', '0')
                if 'lun' not in body:
                    raise ArrayError('missing "lun"', http=400)
                self._reply(200, store.apply(action, host, str(body['lun']), **kwargs))
            except ArrayError as exc:
                self._reply(exc.http, {'error': str(exc)})

    return Handler


def start_http(store, listen):
    address, _sep, port = listen.rpartition(':')
    last = None
    for _attempt in range(20):
        try:
            server = ThreadingHTTPServer((address, int(port)), make_http_handler(store))
            break
        except OSError as exc:
            last = exc
            time.sleep(0.5)
    else:
        raise SystemExit('lab-array: cannot listen on %s: %s' % (listen, last))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name='http', daemon=True)
    thread.start()
    return server


def serve(args, store):
    import mfusepy  # pylint: disable=import-outside-toplevel
    if args.listen:
        start_http(store, args.listen)
    operations = make_filesystem(mfusepy, store.config_path, store.state_path)
    mfusepy.FUSE(operations, os.path.abspath(args.mountpoint), raw_fi=True, foreground=True,
                 fsname='lab-array', subtype='labarray')
    return 0


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(prog='lab-array', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--config', default=DEFAULT_CONFIG, help='LUN map (written by the lab role)')
    parser.add_argument('--state', default=DEFAULT_STATE, help='reservation state (JSON)')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('serve', help='run the FUSE array in the foreground')
    p.add_argument('mountpoint')
    p.add_argument('--listen', default='', help='HTTP control endpoint ADDRESS:PORT')
    p = sub.add_parser('status', help='registrations, reservations, fences (JSON)')
    p.add_argument('lun', nargs='?')
    for name, text in (('fence', 'refuse HOST\'s writes to LUN (admin)'),
                       ('unfence', 'lift the admin fence'),
                       ('check', 'print whether HOST may write LUN')):
        p = sub.add_parser(name, help=text)
        p.add_argument('host')
        p.add_argument('lun')
    for name in ('register', 'release', 'clear'):
        p = sub.add_parser(name, help='PR %s (as initiator HOST); register with key 0 unregisters' % name)
        p.add_argument('host')
        p.add_argument('lun')
        p.add_argument('key')
    p = sub.add_parser('reserve', help='PR reserve (as initiator HOST)')
    p.add_argument('host')
    p.add_argument('lun')
    p.add_argument('key')
    p.add_argument('--type', default='write-exclusive-all-registrants', choices=TYPES)
    p = sub.add_parser('grow', help='grow LUN to BYTES (never shrinks); every host sees the new size')
    p.add_argument('lun')
    p.add_argument('bytes', type=int)
    p = sub.add_parser('preempt', help='PR preempt: remove VICTIM_KEY\'s registrations, take the reservation')
    p.add_argument('host')
    p.add_argument('lun')
    p.add_argument('key')
    p.add_argument('victim_key')
    p.add_argument('--type', default='write-exclusive-all-registrants', choices=TYPES)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # absolute: libfuse changes the working directory to /
    store = Store(os.path.abspath(args.config), os.path.abspath(args.state))
    try:
        if args.command == 'serve':
            return serve(args, store)
        if args.command == 'status':
            out = store.status()
            if args.lun:
                out = out[resolve_lun(store.config(), args.lun)]
            print(json.dumps(out, indent=2, sort_keys=True))
            return 0
        if args.command == 'grow':
            print(json.dumps(grow(store.config(), args.lun, args.bytes), indent=2, sort_keys=True))
            return 0
        if args.command == 'check':
            lun = resolve_lun(store.config(), args.lun)
            allowed = may_write(lun_state(store.read(), lun), args.host)
            print('write allowed' if allowed else 'write refused')
            return 0 if allowed else 3
        kwargs = {}
        if args.command in ('register', 'reserve', 'release', 'preempt', 'clear'):
            kwargs['key'] = args.key
        if args.command in ('reserve', 'preempt'):
            kwargs['kind'] = args.type
        if args.command == 'preempt':
            kwargs['victim_key'] = args.victim_key
        print(json.dumps(store.apply(args.command, args.host, args.lun, **kwargs), indent=2, sort_keys=True))
        return 0
    except ArrayError as exc:
        print('lab-array: %s' % exc, file=sys.stderr)
        return exc.code


if __name__ == '__main__':
    sys.exit(main())
