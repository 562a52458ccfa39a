# Copyright: polardb.stack developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lab-fence: the lab's fence command, installed in every lab host as
/usr/local/sbin/lab-fence. storage_fence's ``command`` driver calls it
(polardb_fence_driver: command in the inventory the lab writes), so the
collection fences the lab's array the way a site fences its storage with its
own command. Standard library only.

    lab-fence --array http://ADDRESS:PORT ACTION --lun WWID --key KEY [--victim-key KEY]

ACTION is one of the fence command contract (docs/fencing.md): status (prints
{"registrations": [...], "reserved": bool}), register, reserve, fence, release.
It talks to the array's HTTP control endpoint, which knows the caller by its
source address, as an array knows an initiator: a host registers or preempts
as itself only. Exit status: 0 done, 2 conflict (the array answered 409),
3 unsupported (unknown LUN or LUN not mapped to this host), 1 anything else.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

WEAR = 'write-exclusive-all-registrants'
EXIT_CONFLICT = 2
EXIT_UNSUPPORTED = 3


class Refused(Exception):
    def __init__(self, msg, code=1):
        super().__init__(msg)
        self.code = code


def call(array, path, body=None, timeout=10):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(array.rstrip('/') + path, data=data, method='POST' if body else 'GET',
                                     headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get('error')
        except ValueError:
            reason = None
        code = {409: EXIT_CONFLICT, 403: EXIT_UNSUPPORTED, 404: EXIT_UNSUPPORTED}.get(exc.code, 1)
        raise Refused('the lab array refused %s: %s' % (path, reason or exc), code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Refused('the lab array at %s does not answer: %s' % (array, exc)) from None


def lun_entry(array, wwid):
    luns = call(array, '/v1/status')['luns']
    bare = wwid.lower()
    for prefix in ('wwn-0x', '0x', 'naa.'):
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
    for name, entry in sorted(luns.items()):
        if str(entry.get('wwid')).lower() == bare:
            return name, entry
    raise Refused('the lab array maps no LUN with WWID %s to this host' % wwid, EXIT_UNSUPPORTED)


def status(array, wwid):
    _name, entry = lun_entry(array, wwid)
    reservation = entry.get('reservation')
    # Only "all registrants" is the contract's reservation; another type (set by
    # hand with lab-array) is reported as reserved too: not every host may write.
    return {'registrations': sorted((entry.get('registrations') or {}).values()),
            'reserved': bool(reservation),
            'reservation_type': reservation['type'] if reservation else None}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='lab-fence', description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--array', required=True, help='the array endpoint, http://ADDRESS:PORT')
    parser.add_argument('action', choices=('status', 'register', 'reserve', 'fence', 'release'))
    parser.add_argument('--lun', required=True, help='the LUN WWID')
    parser.add_argument('--key', default='', help="this host's key (0x...)")
    parser.add_argument('--victim-key', default='', help='fence: the key to preempt')
    args = parser.parse_args(argv)
    try:
        if args.action == 'status':
            print(json.dumps(status(args.array, args.lun)))
            return 0
        if not args.key:
            raise Refused('%s needs --key' % args.action, EXIT_UNSUPPORTED)
        lun, _entry = lun_entry(args.array, args.lun)
        if args.action == 'register':
            call(args.array, '/v1/pr/register', {'lun': lun, 'key': args.key})
        elif args.action == 'release':
            call(args.array, '/v1/pr/register', {'lun': lun, 'key': '0x0'})
        elif args.action == 'reserve':
            call(args.array, '/v1/pr/reserve', {'lun': lun, 'key': args.key, 'type': WEAR})
        else:
            if not args.victim_key:
                raise Refused('fence needs --victim-key', EXIT_UNSUPPORTED)
            # preempt and abort: the victim's registration goes, and with it its writes
            call(args.array, '/v1/pr/preempt', {'lun': lun, 'key': args.key, 'victim_key': args.victim_key,
                                                'type': WEAR})
        return 0
    except Refused as exc:
        print('lab-fence %s: %s' % (args.action, exc), file=sys.stderr)
        return exc.code


if __name__ == '__main__':
    sys.exit(main())
