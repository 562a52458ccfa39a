# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: progress
type: aggregate
author: polardb.stack developers (!UNKNOWN)
version_added: 0.1.0
short_description: Say what a waiting task waits for, on which node, and for how long
description:
  - Long operations (a replica catching up, a promote, a restart) are tasks that
    retry until a condition holds. This callback adds, to every retry and to the
    end of every task that had to wait, the node, the time waited so far and the
    attempt count, plus the C(progress) text of the result when the module
    returns one (for example the problems M(polardb.stack.cluster_info) still sees).
  - Enable it next to the normal output with C(callbacks_enabled = polardb.stack.progress).
  - It also loads this collection's filter plugins once, in the controller's main process, before any task runs.
    ansible-core loads every filter file of a collection in each worker process that templates one of its filters;
    loaded here, the forked workers inherit them (about 20 ms of controller CPU less per task and host that uses one).
requirements:
  - Enabled in ansible.cfg (C([defaults] callbacks_enabled)).
"""

import time

from ansible.plugins.callback import CallbackBase
from ansible.plugins.loader import filter_loader


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'polardb.stack.progress'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._started = {}
        self._waited = set()
        try:
            # any one filter of the collection: ansible-core loads all its filter files to find it
            filter_loader.get('polardb.stack.topology_table')
        except Exception:  # pylint: disable=broad-except
            pass  # only a head start: a worker loads them itself as before

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _elapsed(self, result):
        start = self._started.get((result._host.get_name(), result._task._uuid))
        return time.time() - start if start else 0.0

    def v2_runner_retry(self, result):
        key = (result._host.get_name(), result._task._uuid)
        self._waited.add(key)
        res = result._result
        progress = res.get('progress')
        if progress is None:
            problems = (res.get('cluster') or {}).get('problems') if isinstance(res.get('cluster'), dict) else None
            progress = '; '.join(problems) if problems else None
        self._display.display(
            '  waiting on %s: %s: %.1f s so far (attempt %s of %s)%s' % (
                result._host.get_name(), result._task.get_name().strip(), self._elapsed(result),
                res.get('attempts', '?'), (result._task.retries or 0) + 1,
                (' - ' + str(progress)) if progress else ''),
            color='cyan')

    def _finished(self, result, how):
        key = (result._host.get_name(), result._task._uuid)
        if key in self._waited:
            self._waited.discard(key)
            self._display.display('  %s on %s after waiting %.1f s: %s' % (
                how, result._host.get_name(), self._elapsed(result), result._task.get_name().strip()),
                color='cyan')
        self._started.pop(key, None)

    def v2_runner_on_ok(self, result):
        self._finished(result, 'done')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._finished(result, 'gave up')
