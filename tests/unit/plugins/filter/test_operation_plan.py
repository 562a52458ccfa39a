# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.polardb.stack.plugins.filter.operation_plan import operation_plan


def test_the_filter_adds_the_lines_and_names_the_operation_in_errors():
    assert operation_plan({'nodes': ['pdb1']}, 'destroy_cluster', 'demo')['lines'][0] == 'destroy_cluster of cluster demo'
    with pytest.raises(AnsibleFilterError, match='failover plan: the plan needs from'):
        operation_plan({'to': 'pdb2', 'nodes': ['pdb1', 'pdb2']}, 'failover', 'demo')
