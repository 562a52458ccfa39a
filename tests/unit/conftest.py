# Make `ansible_collections.polardb.stack` importable when pytest runs from the
# repository (ansible-test units places the collection itself).
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
_root = os.path.dirname(os.path.dirname(_here))
_coll = os.path.join(_root, '.venv', 'collections')
if os.path.isdir(os.path.join(_coll, 'ansible_collections', 'polardb', 'stack')) and _coll not in sys.path:
    sys.path.insert(0, _coll)
