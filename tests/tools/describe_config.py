"""Run on a host with the engine installed (as root): print one JSON document
with the binary's `postgres --describe-config` and, from a throwaway engine on
a temporary data directory (no TCP, its own socket), what pg_settings says of
units and enum values, which --describe-config does not print.

Used by `make param-catalog` (tests/tools/param_catalog.yml); never shipped."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

major = sys.argv[1]
bindir = '/usr/lib/postgresql/%s/bin' % major
env = dict(os.environ, LC_ALL='C')
describe = subprocess.run([bindir + '/postgres', '--describe-config'], capture_output=True, text=True,
                          env=env, check=True).stdout
version = subprocess.run([bindir + '/postgres', '--version'], capture_output=True, text=True,
                         env=env, check=True).stdout.strip()
tmp = tempfile.mkdtemp(prefix='pdb-catalog-')
os.chmod(tmp, 0o755)
shutil.chown(tmp, 'postgres', 'postgres')
data = os.path.join(tmp, 'data')


def as_postgres(*argv):
    return subprocess.run(['runuser', '-u', 'postgres', '--'] + list(argv), capture_output=True, text=True,
                          env=env, check=True, cwd='/').stdout


try:
    as_postgres(bindir + '/initdb', '-D', data, '-A', 'peer')
    as_postgres(bindir + '/pg_ctl', '-D', data, '-w', '-l', os.path.join(tmp, 'log'), '-o',
                "-c listen_addresses='' -k %s -p 54329" % tmp, 'start')
    try:
        settings = as_postgres(bindir + '/psql', '-XAtq', '-h', tmp, '-p', '54329', '-d', 'postgres', '-c',
                               "SELECT json_agg(json_build_object('name', name, 'vartype', vartype, "
                               "'context', context, 'unit', unit, 'min_val', min_val, 'max_val', max_val, "
                               "'enumvals', enumvals) ORDER BY name) FROM pg_settings")
    finally:
        as_postgres(bindir + '/pg_ctl', '-D', data, '-w', '-m', 'fast', 'stop')
finally:
    shutil.rmtree(tmp, ignore_errors=True)
print(json.dumps({'version': version, 'describe_config': describe, 'pg_settings': json.loads(settings)}))
