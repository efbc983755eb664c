#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the ocs_render action (plugins/action/ocs_render.py): it runs on the controller only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_render
version_added: 0.4.0
author: ocs-l3 contributors (@ocs-l3)
short_description: Validate the ocs-l3 fabric and render every host's files into a build directory
description:
  - Reads the fabric from the inventory (groups C(spines), C(tors), C(hypervisors), C(nat_gateways),
    host variables C(ocs_*), and C(ocs_racks)/C(ocs_fabric)) and validates all of it, whatever C(--limit) says.
  - Renders the files of O(hosts) with the templates of the roles that apply them.
  - Writes atomically per host under O(build_dir), and C(manifest.json) with each file's kind and sha256.
options:
  build_dir:
    description:
      - Directory that receives C(<host>/<path>) and C(manifest.json), created mode 0700 (the files carry the
        BGP password).
      - Default C(build) in the controller's working directory (beside the operator's inventory repository).
      - Refused when it lies inside an installed collection.
    type: path
  hosts:
    description: Hosts to render (default every fabric host). Validation always covers the whole fabric.
    type: list
    elements: str
  inventory_dir:
    description: Directory against which a relative C(ocs_fabric.instances_file) is resolved.
    type: path
  managed:
    description: Text of C(ansible_managed) in every rendered file.
    type: str
  run_id:
    description: Id of this run (the host lease owner); default a new unique id.
    type: str
  generation:
    description:
      - Generation of the inventory (an integer that grows with every change); hosts refuse an older one.
      - Default the commit time of the inventory directory's last git commit, or none outside git.
    type: int
  bundle_store:
    description:
      - Also publish each rendered host's files as a signed bundle encrypted to that host's key
        (pull mode, C(tools/ocs-pull)), into this directory (C(<host>/<sha256>.bundle) and C(<host>/latest)).
      - Hosts without a public key in O(bundle_keys) get none (listed in RV(bundles_without_key)).
    type: path
  bundle_keys:
    description: Directory of the hosts' public keys, C(<host>.pub) each (C(tools/ocs-pull keygen) prints them).
    type: path
  bundle_signing_key:
    description: The controller's Ed25519 signing key (PKCS#8 PEM, C(tools/ocs-bundle signing-key) makes one).
    type: path
"""

EXAMPLES = r"""
- name: Validate the whole fabric and render the files of this play's hosts
  ocs.l3.ocs_render:
    hosts: "{{ ansible_play_hosts_all }}"
    inventory_dir: "{{ inventory_dir }}"
  run_once: true
  delegate_to: localhost
  register: _ocs_render_result
"""

RETURN = r"""
build_dir:
  description: Where the files were written.
  returned: success
  type: str
dual_stack:
  description: The fabric routes IPv6 too (C(ocs_fabric.internal_ranges6) is set); ocs_routes then sets IPv6 forwarding.
  returned: success
  type: bool
contract:
  description: The shared library's names and paths the roles apply (route protocol, paths, jumps, nft table).
  returned: success
  type: dict
policy:
  description: The host policy's switch and management ranges (ocs_firewall refuses to lock its own run out).
  returned: success
  type: dict
collection:
  description: The collection (a clone or an installed copy) whose templates printed the files.
  returned: success
  type: str
secret:
  description: >-
    Whether the fabric configures any BGP password (ocs_fabric.bgp, ocs_fabric.border, a border peer's, a
    link's own): then ocs_frr shows no frr.conf content or diff on any host.
  returned: success
  type: bool
run_id:
  description: Id of this run (owner of the host leases).
  returned: success
  type: str
generation:
  description: Generation of the inventory, or null outside git.
  returned: success
  type: int
bundles:
  description: Number of bundles published.
  returned: when O(bundle_store) is set
  type: int
bundles_without_key:
  description: Rendered hosts that got no bundle (no public key).
  returned: when O(bundle_store) is set
  type: list
  elements: str
"""
