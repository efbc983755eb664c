# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publish each host's rendered files as a signed, encrypted bundle (controller side).

The render (``ocs_render`` with ``bundle_store``) validates and renders the fabric once,
then calls :func:`publish_fabric`: every rendered host whose public key is known gets a
bundle (``module_utils/bundle.py``: the format, the same code the hosts verify with) in a
store directory laid out as::

    <store>/<host>/<sha256>.bundle     the bundle, named by the sha256 of its bytes
    <store>/<host>/latest              the name of the newest one (a pointer: trusts nothing)

The store is a plain directory: serve it over HTTP, commit it to git, or share it as a
file system. It may be readable by every host: each bundle opens only with its own host's
private key (README, "Pull mode from bundles").

What a host's roles need besides its files (:func:`host_meta`) travels in the bundle too:
the render result's fleet-wide values (generation, whether any BGP password exists, the host
policy's management ranges) and the host's group, its uplinks' interfaces and peers, and the
fabric's instance interface prefix. Nothing else of the fleet.
"""

from __future__ import annotations

import json
import os

from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from ansible_collections.ocs.l3.plugins.module_utils.files import write_atomic
from ansible_collections.ocs.l3.plugins.module_utils.frr import has_secret
from ansible_collections.ocs.l3.plugins.plugin_utils.render import collection_version


def fleet_meta(fab):
    """The render result's fleet-wide values the roles read (the same for every host)."""
    return dict(secret=has_secret(fab), instances=fab.instance_count, dual_stack=fab.dual_stack,
                policy=dict(host_policy=fab.host_policy, management_ranges=[n.text for n in fab.management_ranges]))


def host_meta(fab, host, artifacts, fleet):
    """What ``host``'s roles need besides its files: the fleet values, its group, its uplinks'
    interfaces and peers (ocs_frr waits for those sessions, ocs_natgw sets their rp_filter),
    the instance interface prefix (ocs_dhcp), and its render manifest entry (kind and role of
    each file)."""
    h = fab.hosts[host]
    uplinks = [dict(interface=u.interface, peer=None if u.peer is None else ntoa(u.peer)) for u in h.uplinks]
    return dict(fleet, group=h.group, role=h.role, rack=h.rack.id if h.rack else None, uplinks=uplinks,
                instance_ifname_prefix=fab.instance_ifname_prefix,
                render=[dict(path=a.path, kind=a.kind, role=a.role, mode=a.mode) for a in artifacts])


def pack_host(fab, host, rendered, generation, signing_pem, recipient, collection, fleet=None):
    """The bundle bytes of ``host`` from its rendered files ([(Artifact, text)])."""
    fleet = fleet_meta(fab) if fleet is None else fleet
    files = [(art.path, art.mode, text.encode()) for art, text in rendered]
    meta = host_meta(fab, host, [art for art, dummy in rendered], fleet)
    return lib.pack(host, generation, files, meta, signing_pem, recipient, collection)


def read_keys(keys_dir):
    """{host: public key line} from ``<keys_dir>/<host>.pub`` files."""
    keys = {}
    for name in sorted(os.listdir(keys_dir)):
        if name.endswith(".pub"):
            with open(os.path.join(keys_dir, name)) as fh:
                text = fh.read().strip()
            try:
                lib.parse_public(text, lib.HOST_PUBLIC)
            except lib.BundleError as exc:
                raise lib.BundleError("%s: %s" % (os.path.join(keys_dir, name), exc))
            keys[name[:-len(".pub")]] = text
    return keys


def publish(store, host, data):
    """Store one bundle and point ``<host>/latest`` at it; keep it and the one before (a host may be
    fetching that one right now), delete older ones. Returns its name."""
    lib.check_host(host)
    name = lib.bundle_name(data)
    hdir = os.path.join(store, host)
    os.makedirs(hdir, exist_ok=True)
    path = os.path.join(hdir, name)
    if not os.path.exists(path):
        write_atomic(path, data)
    latest = os.path.join(hdir, "latest")
    try:
        with open(latest) as fh:
            previous = fh.read().strip()
    except OSError:
        previous = None
    if previous != name:
        write_atomic(latest, (name + "\n").encode())
    keep = {name, previous}
    for old in os.listdir(hdir):
        if lib.NAME_RE.match(old) and old not in keep:
            os.unlink(os.path.join(hdir, old))
    return name


def publish_fabric(fab, rendered, generation, store, keys_dir, signing_key_file, collection=None):
    """Bundle and publish every rendered host ({host: [(Artifact, text)]}) that has a public key
    in ``keys_dir``. Returns {"published": {host: name}, "no_key": [hosts]}."""
    if generation is None:
        raise lib.BundleError("bundles need a generation (ocs_render_generation, or an inventory in git)")
    with open(signing_key_file, "rb") as fh:
        signing_pem = fh.read()
    keys = read_keys(keys_dir)
    fleet = fleet_meta(fab)
    collection = collection or collection_version()
    published, no_key = {}, []
    for host in sorted(rendered):
        if host not in keys:
            no_key.append(host)
            continue
        data = pack_host(fab, host, rendered[host], generation, signing_pem, keys[host], collection, fleet)
        published[host] = publish(store, host, data)
    return dict(published=published, no_key=no_key)


def signing_key(path):
    """Make the controller's signing key at ``path`` (mode 0600) unless it exists; return its public line."""
    if os.path.exists(path):
        with open(path, "rb") as fh:
            key = lib.load_private(fh.read(), lib.SIGNING_PUBLIC)
        return lib.private_public_text(key, lib.SIGNING_PUBLIC)
    pem, public = lib.generate_key(lib.SIGNING_PUBLIC)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public


def _parser():
    import argparse

    p = argparse.ArgumentParser(prog="ocs-bundle", description="Signed per-host bundles (controller side).")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("signing-key", help="make the controller's Ed25519 key (0600); print the public key to pin")
    s.add_argument("path")
    s = sub.add_parser("publish", help="validate, render once and publish every host's bundle (ocs.l3.render)")
    s.add_argument("-i", "--inventory", required=True)
    s.add_argument("--store", required=True, help="store directory (serve it over HTTP, commit it to git, share it)")
    s.add_argument("--keys", required=True, help="directory of the hosts' public keys, <host>.pub each")
    s.add_argument("--signing-key", required=True)
    s.epilog = "After --: ansible-playbook arguments (e.g. -- --limit rack_r07)."
    s = sub.add_parser("show", help="verify a bundle's signature and print its header (not its content)")
    s.add_argument("bundle")
    s.add_argument("--signer", required=True, help="the controller's public key file")
    return p


def main(argv):
    import subprocess
    import sys

    argv = list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    opts = _parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    try:
        if opts.command == "signing-key":
            print(signing_key(opts.path))
            return 0
        if opts.command == "show":
            with open(opts.bundle, "rb") as fh, open(opts.signer) as sf:
                header = lib.verify(fh.read(), sf.read())[0]
            print(json.dumps(header, indent=1, sort_keys=True))
            return 0
    except (lib.BundleError, OSError) as exc:
        print("ocs-bundle: %s" % exc, file=sys.stderr)
        return 1
    extra_vars = ["-e", json.dumps(dict(ocs_render_bundle_store=os.path.abspath(opts.store),
                                   ocs_render_bundle_keys=os.path.abspath(opts.keys),
                                   ocs_render_bundle_signing_key=os.path.abspath(opts.signing_key)))]
    return subprocess.call(["ansible-playbook", "-i", opts.inventory, "ocs.l3.render"] + extra_vars + extra)
