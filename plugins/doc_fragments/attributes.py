# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Attributes every module of the collection shares; check_mode and diff_mode
    # stay in each module, since they differ.
    DOCUMENTATION = r'''
attributes:
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: linux
  action_group:
    description: Use C(group/polardb.stack.polardb) in C(module_defaults) to set shared options once.
    support: full
    membership:
      - polardb.stack.polardb
'''

    # check_mode and diff_mode of the modules that only read (the *_info ones,
    # parameter_check): extends_documentation_fragment polardb.stack.attributes.read_only.
    READ_ONLY = r'''
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
'''
