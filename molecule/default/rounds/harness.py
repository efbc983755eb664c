"""What the side-effect rounds share: ansible-playbook runs read back as data
(the ansible.posix.json callback: per task and host, the module's result),
override inventories (a second ``-i`` that replaces some variables: nothing
edits the scenario's YAML), and readers of a host's state that return data
(JSON from ``ip -j``, ``vtysh ... json``, ``journalctl -o json``; rules and
configs normalised in Python).

$OCS_SE_INVENTORY is the base: molecule's inventory (its connection settings
and the scenario's inventory), one or more sources separated by ``:``."""

import json
import os
import re
import shlex
import subprocess
import sys
import yaml

from fabric import ECHO_PORT, FAB, ip, run, wait_for

EPH = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp")
BASE = os.environ["OCS_SE_INVENTORY"].split(os.pathsep)  # conftest.py refuses to run without it
BUILD = os.path.join(EPH, "build")
FABRIC_HOSTS = sorted(h.name for role in ("spine", "tor", "hypervisor", "nat_gateway") for h in FAB.by_role[role])
BIN = os.path.dirname(sys.executable)


def inventory_args(sources):
    return [arg for source in sources for arg in ("-i", source)]


def base_yaml(relpath):
    """A file of the base inventory (its first source), as data."""
    with open(os.path.join(BASE[0], relpath)) as fh:
        return yaml.safe_load(fh)


def overlay(name, group_vars=None, host_vars=None):
    """An override inventory $EPH/overlays/NAME: ``group_vars`` {group: {var: value}} and
    ``host_vars`` {host: {var: value}}, written as the group_vars/ and host_vars/ files of an
    inventory source given after the base (later sources win, variable by variable).
    Returns the sources to pass: the base, then the overlay."""
    root = os.path.join(EPH, "overlays", name)
    subprocess.run(["rm", "-rf", root], check=True)
    for kind, content in (("group_vars", group_vars or {}), ("host_vars", host_vars or {})):
        os.makedirs(os.path.join(root, kind), exist_ok=True)
        for target, values in content.items():
            with open(os.path.join(root, kind, "%s.yml" % target), "w") as fh:
                fh.write("---\n# Override inventory of side-effect round %s (rounds/harness.py)\n" % name)
                yaml.safe_dump(values, fh, default_flow_style=False, sort_keys=False)
    # An inventory source needs one parsable file: the hosts come from the base.
    with open(os.path.join(root, "hosts.yml"), "w") as fh:
        fh.write("---\nall: {}\n")
    return BASE + [root]


class Run:
    """One ansible-playbook run, read from the JSON callback."""

    def __init__(self, rc, stdout, stderr):
        self.rc, self.stderr = rc, stderr
        try:
            self.data = json.loads(stdout)
        except ValueError:
            raise AssertionError("ansible-playbook printed no JSON (rc %d):\n%s\n%s" % (rc, stdout[-3000:], stderr[-3000:]))

    def tasks(self):
        """[(play name, task name, {host: result})] in run order; a role's task is named without
        its role's prefix ("ocs.l3.ocs_dhcp : ")."""
        return [(play["play"]["name"], task["task"]["name"].split(" : ", 1)[-1], task.get("hosts", {}))
                for play in self.data.get("plays", []) for task in play.get("tasks", [])]

    def results(self, task):
        """{host: result} of the task(s) whose name starts with ``task``."""
        out = {}
        for _play, name, hosts in self.tasks():
            if name.startswith(task):
                out.update(hosts)
        return out

    def failures(self):
        """{host: (task name, message)} of the first failure of each host."""
        out = {}
        for _play, name, hosts in self.tasks():
            for host, res in hosts.items():
                if (res.get("failed") or res.get("unreachable")) and host not in out:
                    out[host] = (name, " ".join(str(res.get("msg", "")).split()))
        return out

    @property
    def stats(self):
        return self.data.get("stats", {})

    def brief(self):
        return "rc %d, failures %s, stats %s, stderr %s" % (
            self.rc, self.failures(), self.stats, " ".join(self.stderr.split())[-1500:])


def _command(playbook, args, inventories):
    return [os.path.join(BIN, "ansible-playbook")] + inventory_args(inventories) + [playbook] + list(args)


def _env(extra=None):
    return dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1", **(extra or {}))


def playbook(playbook_name, *args, inventories=None, timeout=1500):
    """Run a playbook (``ocs.l3.site`` or a path) on the fabric; returns its Run."""
    res = subprocess.run(_command(playbook_name, args, inventories or BASE), env=_env(), capture_output=True,
                         text=True, timeout=timeout)
    return Run(res.returncode, res.stdout, res.stderr)


def start_playbook(playbook_name, *args, inventories=None):
    """Start a playbook run in the background; ``finish`` it."""
    return subprocess.Popen(_command(playbook_name, args, inventories or BASE), env=_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc, timeout=1500):
    out, err = proc.communicate(timeout=timeout)
    return Run(proc.returncode, out, err)


def nested_pytest(*paths, env=None):
    """Run tests of the scenario in a child pytest (e.g. verify's tests against another inventory):
    (rc, last lines of its output)."""
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs"] + list(paths),
                         env=dict(os.environ, **(env or {})), capture_output=True, text=True, timeout=1500)
    return res.returncode, "\n".join((res.stdout + res.stderr).splitlines()[-40:])


# --- readers of a host's state -------------------------------------------------------------------

def ok(host, cmd, *args):
    """Run on a host; assert success; return stdout."""
    res = run(host, cmd, *args)
    assert res.rc == 0, "%s: %s: rc %d: %s %s" % (host, cmd, res.rc, res.stdout[-500:], res.stderr[-1000:])
    return res.stdout


def bgp_peers(host):
    """{peer: FRR's summary of the session} (IPv4 unicast)."""
    return json.loads(ok(host, "vtysh -c 'show bgp ipv4 unicast summary json'")).get("peers", {})


def all_established(host):
    peers = bgp_peers(host)
    return bool(peers) and all(p.get("state") == "Established" for p in peers.values())


def sessions_reset(before, after, uptime_grew=True):
    """Peers whose session is not Established now, was re-established, or (uptime_grew) restarted."""
    out = []
    for peer, old in before.items():
        new = after.get(peer, {})
        if (new.get("state") != "Established"
                or new.get("connectionsEstablished") != old.get("connectionsEstablished")
                or (uptime_grew and new.get("peerUptimeMsec", 0) <= old.get("peerUptimeMsec", 0))):
            out.append(peer)
    return out


_COUNTED = re.compile(r"^\[(\d+):(\d+)\] (-A .*)$")


def our_nat_counters(host):
    """[(rule, packets)] of our (OCS-) chains' rules in the nat table, sorted by rule."""
    rules = []
    for line in ok(host, "iptables-save -c -t nat").splitlines():
        m = _COUNTED.match(line)
        if m and m.group(3).startswith("-A OCS-"):
            rules.append((m.group(3), int(m.group(1))))
    return sorted(rules)


def rules(host, *tables):
    """iptables-save lines (rules and chain heads, counters blanked, no comments) of ``tables``."""
    out = []
    for table in tables:
        for line in ok(host, "iptables-save -t %s" % table).splitlines():
            if not line.startswith("#"):
                out.append(re.sub(r"\[\d+:\d+\]", "[0:0]", line))
    return out


def main_pid(host, unit):
    return int(ok(host, "systemctl show -p MainPID --value %s" % shlex.quote(unit)).strip())


def files_sha256(host, *paths):
    return ok(host, "sha256sum", *paths).split()[::2]


def routes(host, prefix):
    return json.loads(ok(host, "ip -4 -j route show exact %s" % shlex.quote(prefix)) or "[]")


def journal(host, *match, unit=None, boot=False):
    """Entries (dicts) of the host's journal, optionally of one unit and/or this boot only."""
    cmd = "journalctl --no-pager -o json" + (" -b" if boot else "") + (" -u %s" % shlex.quote(unit) if unit else "")
    text = ok(host, cmd + "".join(" " + shlex.quote(m) for m in match))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def messages(host, unit):
    return [str(e.get("MESSAGE", "")) for e in journal(host, unit=unit)]


# systemd's catalogue: a unit's start job begins ("Starting ...") and ends ("Started/Finished ...").
UNIT_STARTING = "MESSAGE_ID=7d4958e842da4a758f6c1cdc7b36dcc5"
UNIT_STARTED = "MESSAGE_ID=39f53479d3a045ac8e11786248231fbf"


def boot_order(host, first, then):
    """This boot, (µs when ``first``'s start job finished, µs when ``then``'s began), monotonic."""
    def when(message_id, unit):
        stamps = [int(e["__MONOTONIC_TIMESTAMP"]) for e in journal(host, message_id, boot=True)
                  if e.get("UNIT") == unit and e.get("JOB_RESULT", "done") == "done"]
        return max(stamps) if stamps else None  # the latest: a persistent journal keeps earlier boots
    return when(UNIT_STARTED, first), when(UNIT_STARTING, then)


def wait_booted(host, timeout=120):
    def booted():
        res = subprocess.run(["podman", "exec", host, "systemctl", "is-system-running"], capture_output=True,
                             text=True, check=False)
        return res.stdout.strip() in ("running", "degraded")
    wait_for("%s to boot" % host, booted, timeout)


def host_state(host):
    """What a re-converge must give back on a host, one normalised line per fact: routes (but the
    kernel's own), addresses, iptables rules, nftables tables, FRR's running configuration.
    Counters and kernel ids are blanked; nftables tables and FRR's top-level blocks may come back
    in another order after being removed and re-added: one line per block, blocks sorted."""
    sep = "@@ocs-state@@"
    out = ok(host, "ip -4 -j route show table all; echo %s; ip -4 -j addr show; echo %s; iptables-save; echo %s; "
                   "nft list ruleset; echo %s; vtysh -c 'show running-config'" % (sep, sep, sep, sep))
    route_s, addr_s, ipt_s, nft_s, frr_s = out.split(sep + "\n")
    kernel = []
    for r in json.loads(route_s):
        if r.get("protocol") != "kernel":
            r.pop("nhid", None)
            kernel.append("route " + json.dumps(r, sort_keys=True))
    for link in json.loads(addr_s):
        kernel += ["addr %s %s/%s" % (link["ifname"], a["local"], a["prefixlen"]) for a in link.get("addr_info", [])]
    iptables = [re.sub(r"\[\d+:\d+\]", "[0:0]", line) for line in ipt_s.splitlines() if not line.startswith("#")]
    blocks, block = [], None
    for line in nft_s.splitlines():
        line = re.sub(r"counter packets \d+ bytes \d+", "counter", line)
        if line.startswith("table "):
            block = [line]
        elif line.startswith("}") and block is not None:
            blocks.append(" |".join(block) + " }")
            block = None
        elif block is not None:
            block.append(line)
    frr_blocks, block = [], []
    for line in frr_s.splitlines():
        if line.startswith("Building configuration"):
            continue
        if line.startswith(" ") or line.startswith("exit"):
            block.append(line)
            continue
        if block:
            frr_blocks.append(" |".join(block))
        block = [line]
    if block:
        frr_blocks.append(" |".join(block))
    return sorted(kernel) + iptables + sorted(blocks) + sorted(frr_blocks)


# --- instances (the harness's VMs: ../files/ocs-instance-up) ---------------------------------------

class Vm:
    """An instance as the harness handles it (the model's Instance, or one an override inventory adds)."""

    def __init__(self, hv, name, interface, mac, address, floating=None):
        self.hv, self.name, self.interface, self.mac = hv, name, interface, mac
        self.address, self.floating = address, floating

    @classmethod
    def of(cls, inst):
        return cls(inst.hypervisor.name, inst.name, inst.interface, inst.mac, ip(inst.ip),
                   ip(inst.floating_ip) if inst.floating_ip is not None else None)

    def up(self, fresh=False):
        """Start it (netns, tap, dhclient, probe); ``fresh``: delete it first, lease file too."""
        if fresh:
            self.down()
            ok(self.hv, "rm -f /var/lib/dhcp/{0}.leases /var/lib/dhcp/{0}.leases6".format(self.name))
        return ok(self.hv, "/usr/local/sbin/ocs-instance-up", self.name, self.interface, self.mac, ECHO_PORT)

    def down(self):
        """Delete it: its units, netns and tap (as when a VM is deleted)."""
        run(self.hv, "systemctl stop ocs-dhc-{0} ocs-dhc6-{0} ocs-probe-{0} ocs-probe6-{0}".format(self.name))
        run(self.hv, "ip link del %s" % shlex.quote(self.interface))
        run(self.hv, "ip netns del %s" % shlex.quote(self.name))

    def leased(self):
        """It holds its address on eth0 (its DHCP lease)."""
        data = json.loads(run(self.hv, "ip -n %s -4 -j addr show dev eth0" % shlex.quote(self.name)).stdout or "[]")
        return any(a.get("local") == self.address for d in data for a in d.get("addr_info", []))

    def routed(self, address=None):
        """The agent's /32 (proto 211) of its address (or ``address``) on its tap."""
        res = run(self.hv, "ip -4 -j route show %s/32 dev %s proto 211" % (address or self.address, self.interface))
        return res.rc == 0 and bool(json.loads(res.stdout or "[]"))

    def ask(self, target, port=ECHO_PORT):
        """(rc, answer) of the probe at target:port, asked from inside the instance."""
        res = run(self.hv, "ip netns exec %s /usr/local/bin/ocs-probe ask %s %s" % (self.name, target, port))
        return res.rc, res.stdout.strip()

    def renew_from_lease_file(self):
        """dhclient started again from its lease file (as after a reboot) must use INIT-REBOOT: ask
        for the leased address at once (DHCPREQUEST, no DHCPDISCOVER) and get it (DHCPACK). Its own
        dhclient unit runs again afterwards."""
        run(self.hv, "systemctl stop ocs-dhc-%s" % self.name)
        try:
            res = run(self.hv, "ip netns exec %s timeout 20 dhclient -4 -1 -v -cf /etc/dhcp/ocs-instance.conf "
                               "-lf /var/lib/dhcp/%s.leases -pf /run/ocs-se-%s.pid eth0" % ((self.name,) * 3))
            run(self.hv, "ip netns exec %s dhclient -x -pf /run/ocs-se-%s.pid" % (self.name, self.name))
        finally:
            self.up()
        trace = res.stdout + res.stderr
        assert res.rc == 0, "%s: dhclient from the lease file failed: %s" % (self.name, trace[-1500:])
        assert "DHCPDISCOVER" not in trace, "%s started over (DISCOVER), not INIT-REBOOT: %s" % (self.name, trace)
        assert ("DHCPREQUEST for %s" % self.address) in trace and ("DHCPACK of %s" % self.address) in trace, \
            "%s: no REQUEST/ACK of its address: %s" % (self.name, trace)
