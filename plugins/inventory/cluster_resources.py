# -*- coding: utf-8 -*-
# Copyright: polardb.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
name: cluster_resources
short_description: The clusters declared in Kubernetes (PolarDBCluster resources) as hosts and groups
version_added: 0.4.0
description:
  - Reads the C(PolarDBCluster) resources of the given namespaces and gives the playbooks the inventory they expect - one
    group C(polardb_<cluster>) per resource (C(-) in its name read as C(_)) with the cluster's settings as group
    variables, its member nodes as hosts (C(ansible_host), C(polardb_lun_wwid), C(polardb_port),
    C(polardb_node_role)), and role groups C(role_rw), C(role_replica), C(role_standby) from the live status written by
    the last reconcile (from the spec before the first one).
  - The members are the RW (the status's, else C(spec.primary)), the first C(spec.replicas) other non-standby nodes, and
    every standby; the other nodes of C(spec.nodes) are where replicas may be added. A node that the status lists as a
    running replica or standby but that C(spec.replicas) now leaves out stays in the cluster's group, with
    C(polardb_k8s_leaving=true), until reconcile removed it.
  - The lifecycle playbooks run on these groups take the cluster's C(coordination.k8s.io/v1) Lease (the one
    C(reconcile.yml) holds) beside their lock on the nodes, so a playbook and a reconcile never run at once. They
    reach the API server as this plugin does when it was given O(kubeconfig) (and O(context)), set as the group
    variables C(polardb_k8s_kubeconfig) and C(polardb_k8s_context); otherwise through kubernetes.core's defaults.
  - Usable as an AWX / Automation Controller inventory source. SSH users and keys are not in the resource - give them as
    O(compose) or group variables of another inventory source, or in the job template's credentials.
  - Connects through kubernetes.core's client (kubeconfig, context, token or certificates, or the C(K8S_AUTH_*)
    environment variables).
author:
  - polardb.stack developers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin; the inventory file must say it.
    type: str
    required: true
    choices: [polardb.stack.cluster_resources]
  namespaces:
    description: Namespaces to read the resources from (a RoleBinding per namespace is enough).
    type: list
    elements: str
    required: true
  kubeconfig:
    description: Path of the kubeconfig file; default as kubernetes.core (C(K8S_AUTH_KUBECONFIG), then C(~/.kube/config)).
    type: path
  context:
    description: Context of the kubeconfig to use.
    type: str
  host:
    description: URL of the API server, instead of a kubeconfig.
    type: str
  api_key:
    description: A bearer token (a service account's), instead of a kubeconfig.
    type: str
  ca_cert:
    description: CA certificate of the API server, with O(host).
    type: path
  validate_certs:
    description: Whether to check the API server's certificate.
    type: bool
'''

EXAMPLES = r'''
# databases.k8s.yml (the file name must end in .k8s.yml or .k8s.yaml)
plugin: polardb.stack.cluster_resources
namespaces: [databases]
compose:
  ansible_user: "'dbadmin'"
'''

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

from ansible_collections.polardb.stack.plugins.module_utils import k8s_api, k8s_resource

AUTH_OPTIONS = ('kubeconfig', 'context', 'host', 'api_key', 'ca_cert', 'validate_certs')


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = 'polardb.stack.cluster_resources'

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(('.k8s.yml', '.k8s.yaml'))

    def _resources(self):
        try:
            from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
        except ImportError as e:
            raise AnsibleParserError('polardb.stack.cluster_resources needs kubernetes.core and the kubernetes '
                                     'Python library: %s' % e)
        auth = dict((k, self.get_option(k)) for k in AUTH_OPTIONS if self.get_option(k) is not None)
        try:
            api = k8s_api.KubeApi(get_api_client(**auth))
            found = []
            for namespace in self.get_option('namespaces'):
                found.extend(k8s_api.check(api.call('GET', k8s_api.cluster_path(namespace)),
                                           'listing PolarDBCluster resources in namespace %s' % namespace,
                                           ok=(200,)).get('items') or [])
            return found
        except Exception as e:  # any failure of the connection: an inventory source error that names it
            raise AnsibleParserError('polardb.stack.cluster_resources: %s' % e)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        try:
            inv = k8s_resource.inventory(self._resources())
        except ValueError as e:
            raise AnsibleParserError('polardb.stack.cluster_resources: %s' % e)
        for group in sorted(inv['groups']):
            self.inventory.add_group(group)
        for name, hvars in sorted(inv['hosts'].items()):
            self.inventory.add_host(name)
            for key, value in hvars.items():
                self.inventory.set_variable(name, key, value)
        for group, members in sorted(inv['groups'].items()):
            for name in members:
                self.inventory.add_child(group, name)
        # the same API server for the playbooks, which take the cluster's Lease there
        given = (('kubeconfig', 'polardb_k8s_kubeconfig'), ('context', 'polardb_k8s_context'))
        reach = dict((var, self.get_option(opt)) for opt, var in given if self.get_option(opt))
        for group, gvars in sorted(inv['group_vars'].items()):
            for key, value in sorted(dict(gvars, **reach).items()):
                self.inventory.set_variable(group, key, value)
        strict = self.get_option('strict')
        for name, hvars in inv['hosts'].items():
            allvars = self.inventory.get_host(name).get_vars()
            self._set_composite_vars(self.get_option('compose'), allvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option('groups'), allvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option('keyed_groups'), allvars, name, strict=strict)
