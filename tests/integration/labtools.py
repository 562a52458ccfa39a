"""Paths and small helpers shared by the integration tests."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_INVENTORY = os.path.join(ROOT, 'inventories', 'lab', 'hosts.yml')
VENV_BIN = os.path.join(ROOT, '.venv', 'bin')


def one_line(text):
    """Ansible folds long messages; compare on single spaces."""
    return re.sub(r'\s+', ' ', text)
