# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The desired state a converge installed on a host, as the host agent and the boot restore read it.

Standard library only (installed on every host by the ocs_agent role, see
``constants.HOST_LIBRARY``). Everything lives under one state directory,
``constants.STATE_DIR`` unless the environment variable
``constants.STATE_DIR_ENV`` (or a caller) names another one: the tests run the
agent and the restore on a temporary directory.

``run(argv, data=None) -> (rc, stdout, stderr)`` is the command runner every
host-side helper takes (:func:`process_runner` here, ``netns.module_runner``
inside a module), so tests can replace it.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys

from . import constants, files
from .route_table import parse_lines

PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,7}")
"""What the fabric validation allows as ``instance_ifname_prefix``."""
CONFIG_KEYS = ("instance_ifname_prefix",)
"""The keys every ``agent.conf`` has."""
RA_KEYS = ("ra_mtu", "ra_dns_lifetime", "ra_rdnss", "ra_dnssl")
"""The optional keys of a dual-stack hypervisor's ``agent.conf``: what the agent's periodic router
advertisements carry (host_agent.router_advertisement), the same as dnsmasq's. ``ra_mtu`` turns them on."""
DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""A domain name as the fabric validation allows it (``ocs_fabric.domain``)."""


class StateError(Exception):
    """An installed state file is unusable; the message names the file (and line)."""


def state_dir(explicit=None):
    """The state directory: ``explicit``, else $OCS_STATE_DIR, else constants.STATE_DIR."""
    return explicit or os.environ.get(constants.STATE_DIR_ENV) or constants.STATE_DIR


def path_in(base, path):
    """A constants path (under constants.STATE_DIR) moved under ``base``."""
    if not path.startswith(constants.STATE_DIR + "/"):
        raise ValueError("%s is not under %s" % (path, constants.STATE_DIR))
    return os.path.join(base, path[len(constants.STATE_DIR) + 1:])


class Paths:
    """The installed files under one state directory."""

    def __init__(self, base=None):
        self.base = state_dir(base)
        self.routes = path_in(self.base, constants.ROUTES_PATH)
        self.agent_config = path_in(self.base, constants.AGENT_CONFIG_PATH)
        self.generation = path_in(self.base, constants.GENERATION_PATH)
        self.nat = path_in(self.base, constants.NAT_PATH)
        self.filter = path_in(self.base, constants.FILTER_PATH)
        self.filter6 = path_in(self.base, constants.FILTER6_PATH)
        self.natgw = path_in(self.base, constants.NATGW_PATH)

    def iptables_parts(self):
        """[(path, family, jumps)] of the iptables files, in the order they are applied;
        jumps as the module takes them ({table, chain, target, first})."""
        nat = [dict(table=t, chain=c, target=x, first=False) for t, c, x in constants.NAT_JUMPS]
        filt = [dict(table=t, chain=c, target=x, first=True) for t, c, x in constants.FILTER_JUMPS]
        return [(self.nat, "ipv4", nat), (self.filter, "ipv4", filt), (self.filter6, "ipv6", filt)]


def process_runner(timeout=600):
    """``run`` with subprocess: text in and out; a missing program is rc 127, not an exception."""
    def run(argv, data=None):
        try:
            proc = subprocess.run(argv, input=data, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            return 127, "", str(exc)
        except subprocess.TimeoutExpired:
            return 124, "", "%s: no answer within %d s" % (argv[0], timeout)
        return proc.returncode, proc.stdout, proc.stderr
    return run


def read_text(path):
    """A state file's text; StateError naming it when it cannot be read (or is not UTF-8)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError("cannot read %s: %s" % (path, exc))


def _ra_value(key, value):
    """An RA setting of ``agent.conf`` -> its value; ValueError saying what is wrong."""
    if key in ("ra_mtu", "ra_dns_lifetime"):
        if not value.isdigit():
            raise ValueError("not a number")
        number = int(value)
        if key == "ra_mtu" and not 1280 <= number <= 65535:
            raise ValueError("not an IPv6 MTU (1280-65535)")
        if key == "ra_dns_lifetime" and number > 0xFFFFFFFF:
            raise ValueError("more than 32 bits")
        return number
    items = [v for v in value.split(",") if v]
    for item in items:
        if key == "ra_rdnss":
            try:
                socket.inet_pton(socket.AF_INET6, item)
            except OSError:
                raise ValueError("%r is not an IPv6 address" % item)
        elif not DOMAIN_RE.fullmatch(item):
            raise ValueError("%r is not a domain name" % item)
    return items


def parse_config(text, path):
    """The agent's config file (``key=value`` lines, ``#`` comments) -> dict; StateError naming
    the file and line of anything else, or of a missing key. The RA keys (``RA_KEYS``) are
    optional; ``ra_mtu``, ``ra_dns_lifetime`` become ints, ``ra_rdnss``, ``ra_dnssl`` lists."""
    out = {}
    known = CONFIG_KEYS + RA_KEYS
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in known:
            raise StateError("%s:%d: expected KEY=VALUE, KEY one of %s: %r" % (path, n, ", ".join(known), raw[:200]))
        if key in out:
            raise StateError("%s:%d: %s given twice" % (path, n, key))
        if key == "instance_ifname_prefix" and not PREFIX_RE.fullmatch(value):
            raise StateError("%s:%d: instance_ifname_prefix %r is not 1-8 characters a-z0-9- starting with a letter"
                             % (path, n, value))
        if key in RA_KEYS:
            try:
                value = _ra_value(key, value)
            except ValueError as exc:
                raise StateError("%s:%d: %s: %s" % (path, n, key, exc))
        out[key] = value
    missing = [k for k in CONFIG_KEYS if k not in out]
    if "ra_mtu" not in out and any(k in out for k in RA_KEYS):
        missing.append("ra_mtu (the other ra_ keys need it)")
    if missing:
        raise StateError("%s: %s missing" % (path, ", ".join(missing)))
    return out


def ra_option_lifetime(lease_time):
    """The lifetime of the RA's DNS options (RDNSS, DNSSL), as dnsmasq computes it for a range with
    ``lease_time``: the lease time, at least three RA intervals."""
    return max(lease_time, 3 * constants.RA_INTERVAL)


def config_text(prefix, ra=None):
    """The lines of the agent's config file (what the render prints); ``ra``: dict of the RA
    settings (mtu, dns_lifetime, rdnss [text], dnssl [names]) on a dual-stack hypervisor."""
    lines = ["instance_ifname_prefix=%s" % prefix]
    if ra:
        lines += ["ra_mtu=%d" % ra["mtu"], "ra_dns_lifetime=%d" % ra["dns_lifetime"]]
        if ra.get("rdnss"):
            lines.append("ra_rdnss=%s" % ",".join(ra["rdnss"]))
        if ra.get("dnssl"):
            lines.append("ra_dnssl=%s" % ",".join(ra["dnssl"]))
    return "\n".join(lines) + "\n"


def read_routes(path):
    """The desired route lines; StateError naming the file (and line) when unusable."""
    try:
        return parse_lines(read_text(path), path, constants.ROUTE_PROTOCOL)
    except ValueError as exc:
        raise StateError(str(exc))


def read_generation(path):
    """The generation a converge recorded, or None (absent, unreadable or damaged: informational only)."""
    return files.generation_or_none(path)


def signature(paths):
    """What changes when a converge installs a new version of any of ``paths``
    (Ansible's copy renames: a new inode; an edit in place: mtime and size)."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((path, None))
            continue
        out.append((path, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class _Formatter(logging.Formatter):
    def format(self, record):
        return record.getMessage()


def setup_logging(verbose=False):
    """Plain lines on stdout (the journal adds time and unit); errors say ``error:`` themselves."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
