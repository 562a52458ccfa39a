# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import subprocess
import sys


def test_filter_files_import_no_domain_module_at_load():
    """ansible-core imports every filter file of the collection in each worker that uses one
    of them: loading a filter file must not import the domain modules (nor cryptography)."""
    here = os.path.dirname(os.path.abspath(__file__))
    filters = os.path.join(here, '..', '..', '..', '..', 'plugins', 'filter', '*.py')
    names = sorted(os.path.basename(p)[:-3] for p in glob.glob(filters))
    assert 'switchover_target' in names
    code = ('import sys\n'
            'for n in %r:\n'
            '    __import__("ansible_collections.polardb.stack.plugins.filter." + n)\n'
            'ours = ("ansible_collections.polardb.stack.plugins.module_utils.",\n'
            '        "ansible_collections.polardb.stack.plugins.plugin_utils.", "cryptography")\n'
            'print(sorted(m for m in sys.modules if m.startswith(ours)))'
            % names)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=False,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]', out.stdout
