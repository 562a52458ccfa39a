# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.polardb.stack.plugins.module_utils.node_files import NodeFiles, parse_mode
from ansible_collections.polardb.stack.plugins.module_utils.runner import PolarDBError


def me(owner, group, what):
    return os.getuid(), os.getgid()


def mode_of(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def spec(path, content='a = 1\n', mode='0640', **kw):
    return dict(dict(path=str(path), content=content, owner='postgres', group='postgres', mode=mode), **kw)


def test_creates_then_changes_nothing(tmp_path):
    conf = tmp_path / 'conf'
    dirs = [dict(path=str(conf), owner='postgres', group='postgres', mode='0750')]
    files = [spec(conf / 'postgresql.conf'), spec(conf / 'server.key', 'KEY', '0600', secret=True)]
    r = NodeFiles(dirs, files, ids=me).run()
    assert r['changed'] and r['changed_paths'] == [str(conf), str(conf / 'postgresql.conf'), str(conf / 'server.key')]
    assert (conf / 'postgresql.conf').read_text() == 'a = 1\n' and mode_of(conf / 'postgresql.conf') == 0o640
    assert mode_of(conf) == 0o750 and mode_of(conf / 'server.key') == 0o600
    # the secret is not in the diff, the other file is
    assert r['diff']['after'] == {str(conf / 'postgresql.conf'): 'a = 1\n'}
    assert r['diff']['before'] == {str(conf / 'postgresql.conf'): None}
    again = NodeFiles(dirs, files, ids=me).run()
    assert again == {'changed': False, 'changed_paths': [], 'actions': [], 'diff': {'before': {}, 'after': {}}}
    assert not [p for p in os.listdir(str(conf)) if p.startswith('.polardb-')]   # no temporary file left


def test_content_and_mode_are_mended(tmp_path):
    path = tmp_path / 'pg_hba.conf'
    path.write_text('old\n')
    os.chmod(str(path), 0o644)
    r = NodeFiles(files=[spec(path, 'new\n')], ids=me).run()
    assert r['actions'] == ['write %s' % path]
    assert path.read_text() == 'new\n' and mode_of(path) == 0o640
    assert r['diff']['before'] == {str(path): 'old\n'}
    os.chmod(str(path), 0o644)
    r = NodeFiles(files=[spec(path, 'new\n')], ids=me).run()
    assert r['actions'] == ['chmod 0640 %s' % path] and mode_of(path) == 0o640


def test_check_mode_writes_nothing(tmp_path):
    conf = tmp_path / 'conf'
    r = NodeFiles([dict(path=str(conf), owner='root', group='root', mode='0750')],
                  [spec(tmp_path / 'x.conf')], check_mode=True, ids=me).run()
    assert r['changed'] and r['actions'] == ['would create directory %s' % conf, 'would create %s' % (tmp_path / 'x.conf')]
    assert not conf.exists() and not (tmp_path / 'x.conf').exists()


def test_errors_name_the_path(tmp_path):
    (tmp_path / 'plain').write_text('')
    with pytest.raises(PolarDBError) as e:
        NodeFiles([dict(path=str(tmp_path / 'plain'), owner='root', group='root', mode='0750')], ids=me).run()
    assert 'is not a directory' in e.value.msg
    with pytest.raises(PolarDBError) as e:
        NodeFiles(files=[spec(tmp_path / 'missing' / 'x.conf')], ids=me).run()
    assert 'cannot write %s' % (tmp_path / 'missing' / 'x.conf') in e.value.msg
    with pytest.raises(PolarDBError) as e:
        parse_mode('rw-r-----', '/etc/x')
    assert '/etc/x: mode' in e.value.msg
    assert parse_mode('0600', 'x') == 0o600
