"""Graceful restart and BFD with real FRR (issue 18, item 2).

Three hosts in a line, each in its own network namespace running zebra,
staticd, bfdd and bgpd with the configuration ``ocs_l3.frr`` computes,
applied by the role's module::

    spine1 (198.18.0.1) --tor/sp1-- tor-r01 (198.18.1.1) --hv1/tor-- hv-r01-01 (198.18.1.11)

Every address is a loopback /32 on no link, so traffic from the hypervisor's
address to the spine's crosses the ToR's forwarding plane on BGP routes only
(the ToR's, and both neighbours' routes to and through it). The checks:

1. BFD (``bfd: true``, keepalive 3, holdtime 9): the ToR's link to the spine
   goes silent (an nft rule in the ToR's namespace drops everything on it
   both ways; carrier stays up, as with a dead optic or a hung line card).
   The spine drops the session and the hypervisor's route within 3 s (BFD,
   300 ms x 3); the control without BFD takes the hold time (> 5 s).
2. bfdd restart: with ``bfd`` and ``graceful_restart`` (what the project
   renders), killing and restarting the ToR's bfdd resets its BGP sessions
   (observed, asserted). FRR's ``neighbor X bfd check-control-plane-failure``
   keeps them Established, but in FRR 8.4 it also makes BFD ignore a dead
   link (asserted too), so the project does not render it (docs/failures.md).
3. Graceful restart (``graceful_restart: true``, rendered with
   ``bgp graceful-restart preserve-fw-state``): the ToR's bgpd is killed
   (SIGKILL: a crash) and restarted the way FRR's init scripts do (the daemon
   with no configuration, then ``vtysh -b -d bgpd``) while the hypervisor
   pings the spine every 50 ms: at most a few pings are lost (0 measured).
   The control without graceful restart loses seconds of pings and the
   neighbours withdraw the ToR's routes. A clean stop (SIGTERM) with graceful
   restart is measured too: the neighbours keep their routes (asserted);
   bgpd usually withdraws its own from zebra on a clean exit, so the ToR
   drops traffic until it has converged again, but not always: a race
   inside FRR (reported, not asserted).

FRR sets the restart state bit (R) in every OPEN it sends during the first
120 s after bgpd started (its restart time; not configurable before the
instance exists). A restarting bgpd that receives R from a neighbour takes
the neighbour for restarting too and tells zebra at once that its routes are
complete: zebra deletes the stale routes it kept. In a fabric whose
neighbours have been up for minutes that does not happen, so the graceful
restart lab waits until its neighbours are 120 s old: it is built first
(module fixture) and the BFD checks run meanwhile; the file takes about
3 minutes. Measured numbers are printed as ``gr-bfd: ...`` lines
(``pytest -s``) and recorded in docs/failures.md.
"""

import copy
import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers import sh
from test_frr_netns import HEADER, Lab, reload_module, wait_for

from fabric_data import BASE  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines  # noqa: E402

HOSTS = ("spine1", "tor-r01", "hv-r01-01")
LOOPBACK = {"spine1": "198.18.0.1", "tor-r01": "198.18.1.1", "hv-r01-01": "198.18.1.11"}
LINKS = [("spine1", "tor", "198.18.0.16/31", "tor-r01", "sp1", "198.18.0.17/31"),
         ("tor-r01", "hv1", "198.18.1.32/31", "hv-r01-01", "tor", "198.18.1.33/31")]
PEERS = {"spine1": {"198.18.0.17"}, "tor-r01": {"198.18.0.16", "198.18.1.33"}, "hv-r01-01": {"198.18.1.32"}}
SPINE_SIDE, HV_SIDE = "198.18.0.17", "198.18.1.32"  # the ToR, as the spine and the hypervisor know it
HV_ROUTE, SPINE_ROUTE = LOOPBACK["hv-r01-01"] + "/32", LOOPBACK["spine1"] + "/32"
HOLDTIME = 9
BFD_BOUND = 3  # seconds: BFD's 0.9 s detection, with room for a loaded CI machine
RESTART_TIME = 120  # FRR's graceful restart time: the R bit is sent this long after bgpd started
PING_INTERVAL = 0.05
CUT = """table inet ocs_cut {
 chain cin { type filter hook input priority 0; policy accept; iifname "%(i)s" drop; }
 chain cout { type filter hook output priority 0; policy accept; oifname "%(i)s" drop; }
}
"""
CCPF = "bfd check-control-plane-failure"


def lab_data(**bgp):
    """The test fabric reduced to one spine, one ToR and one hypervisor on /31
    links, every host address a loopback; ``bgp`` is ocs_fabric.bgp."""
    data = copy.deepcopy(BASE)
    data["groups"] = {"spines": ["spine1"], "tors": ["tor-r01"], "hypervisors": ["hv-r01-01"], "nat_gateways": []}
    data["racks"].pop("r02")
    data["fabric"]["border_peers"] = []
    for name in ("tor-r02", "hv-r01-02", "hv-r02-01", "gw-01"):
        data["hostvars"].pop(name)
    hv = data["hostvars"]
    for host in HOSTS:
        hv[host] = {"ocs_address": LOOPBACK[host], "ocs_uplinks": []}
        if host != "spine1":
            hv[host]["ocs_rack"] = "r01"
        if host != "hv-r01-01":
            hv[host]["ocs_downlinks"] = []
    hv["hv-r01-01"].update(ocs_public_address="203.0.113.11", ocs_instances=[])
    for up, up_if, up_ip, low, low_if, low_ip in LINKS:
        hv[up]["ocs_downlinks"].append({"interface": up_if, "address": up_ip})
        hv[low]["ocs_uplinks"].append({"interface": low_if, "address": low_ip, "peer": up_ip.split("/")[0]})
    data["fabric"]["bgp"] = bgp
    return data


def with_ccpf(lines):
    """frr.conf lines with ``neighbor G bfd check-control-plane-failure`` after each ``neighbor G bfd``."""
    out = []
    for line in lines:
        out.append(line)
        if line.startswith(" neighbor ") and line.endswith(" bfd"):
            out.append(line[:-3] + CCPF)
    return out


class GrLab(Lab):
    """The three hosts with bfdd too; daemons can be killed and restarted one by one."""

    DAEMONS = ("zebra", "staticd", "bfdd", "bgpd")

    def __init__(self, fab, edit=None):
        super().__init__(HOSTS)
        self.fab = fab
        self.edit = edit or (lambda lines: lines)
        self.started = None

    def build(self):
        self.namespaces()
        for host in HOSTS:
            sh("ip", "netns", "exec", self.ns[host], "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.ip(host, "addr", "add", LOOPBACK[host] + "/32", "dev", "lo")
        for up, up_if, up_ip, low, low_if, low_ip in LINKS:
            self.veth(up, up_if, low, low_if)
            self.ip(up, "addr", "add", up_ip, "dev", up_if)
            self.ip(low, "addr", "add", low_ip, "dev", low_if)
        for host in HOSTS:
            self.start(host)
        for host in HOSTS:
            path = os.path.join(self.sock(host), "frr.conf")
            with open(path, "w") as fh:
                fh.write(HEADER + "\n".join(self.edit(config_lines(self.fab, self.fab.hosts[host]))) + "\n")
            assert reload_module(path, self.sock(host))["changed"]
        self.started = time.monotonic()  # every router bgp instance exists (FRR's restart time runs from here)
        self.settle()

    def start(self, host, daemons=DAEMONS):
        d = self.sock(host)
        for daemon in daemons:
            conf = os.path.join(d, "%s.conf" % daemon)
            open(conf, "w").close()
            shutil.chown(conf, "frr", "frr")
            pidfile = os.path.join(d, "%s.pid" % daemon)
            if os.path.exists(pidfile):
                os.unlink(pidfile)
            extra = ["--bfdctl", os.path.join(d, "bfdd.sock")] if daemon == "bfdd" else []
            sh("ip", "netns", "exec", self.ns[host], "/usr/lib/frr/%s" % daemon, "-d", "-f", conf, "-i", pidfile,
               "-z", os.path.join(d, "zserv.api"), "--vty_socket", d, "-A", "127.0.0.1", *extra)
            wait_for(lambda: self.pid(host, daemon), "%s %s started" % (host, daemon), 20, 0.05)
            self.pids.append(self.pid(host, daemon))

    def pid(self, host, daemon):
        try:
            with open(os.path.join(self.sock(host), "%s.pid" % daemon)) as fh:
                return int(fh.read().strip() or 0)
        except FileNotFoundError:
            return 0

    def idempotent(self):
        """A second apply of every host's file: frr-reload.py finds nothing to do."""
        for host in HOSTS:
            again = reload_module(os.path.join(self.sock(host), "frr.conf"), self.sock(host))
            assert not again["changed"], (host, again)

    def kill(self, host, daemon, sig):
        """Send ``sig`` to the daemon and wait until it is gone."""
        pid = self.pid(host, daemon)
        os.kill(pid, sig)

        def gone():
            try:
                with open("/proc/%d/stat" % pid) as fh:
                    return fh.read().split(") ")[1][0] == "Z"
            except FileNotFoundError:
                return True
        wait_for(gone, "%s %s (pid %d) gone" % (host, daemon, pid), 20, 0.05)

    def restart_bgpd(self, host):
        """bgpd as FRR's init scripts start it: no configuration, then
        ``vtysh -b -d bgpd`` (here the rendered file through ``-f``, which
        reads it the same way: between start and end of configuration markers,
        so bgpd holds its sessions until the whole file is in)."""
        self.start(host, ("bgpd",))
        sh("vtysh", "--vty_socket", self.sock(host), "-d", "bgpd", "-f", os.path.join(self.sock(host), "frr.conf"))

    def cut(self, host, iface):
        """Everything on ``iface`` of ``host`` dropped both ways; the carrier stays up. Returns the time."""
        start = time.monotonic()
        subprocess.run(["ip", "netns", "exec", self.ns[host], "nft", "-f", "-"], input=CUT % {"i": iface},
                       text=True, check=True)
        return start

    def kernel_has(self, host, prefix):
        return bool(self.ip(host, "route", "show", "exact", prefix, "proto", "bgp").stdout.strip())

    def sessions(self, host):
        """{peer: (state, connections established, uptime ms)}."""
        return {k: (v["bgpState"], v["connectionsEstablished"], v.get("bgpTimerUpMsec", 0))
                for k, v in self.json(host, "show bgp neighbors").items()}

    def settle(self):
        for host in HOSTS:
            wait_for(lambda: self.established(host) == PEERS[host], "%s sessions Established" % host, 60, 0.2)
        wait_for(lambda: self.kernel_has("hv-r01-01", SPINE_ROUTE) and self.kernel_has("spine1", HV_ROUTE)
                 and self.kernel_has("tor-r01", SPINE_ROUTE) and self.kernel_has("tor-r01", HV_ROUTE),
                 "routes across the ToR in every kernel", 60, 0.2)
        if self.fab.bgp.get("bfd"):
            wait_for(lambda: all(s["status"] == "up" for s in self.json("tor-r01", "show bfd peers"))
                     and len(self.json("tor-r01", "show bfd peers")) == 2, "the ToR's BFD sessions up", 30, 0.2)

    def ping(self):
        """A ping from the hypervisor's address to the spine's every 50 ms, until ``stop_ping``."""
        return subprocess.Popen(["ip", "netns", "exec", self.ns["hv-r01-01"], "ping", "-n", "-q", "-i",
                                 str(PING_INTERVAL), "-I", LOOPBACK["hv-r01-01"], LOOPBACK["spine1"]],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_ping(proc):
    """(sent, lost) of a ping started by ``GrLab.ping``."""
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=10)[0]
    line = next(ln for ln in out.splitlines() if "packets transmitted" in ln)
    sent, received = int(line.split()[0]), int(line.split(", ")[1].split()[0])
    return sent, sent - received


def report(line):
    print("\ngr-bfd: " + line)


def need_frr():
    if os.geteuid() != 0 or not shutil.which("vtysh") or not shutil.which("nft") \
            or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr, frr-pythontools and nftables (make validate installs them)")


@pytest.fixture
def make_lab():
    need_frr()
    labs = []

    def make(edit=None, **bgp):
        lab = GrLab(build(lab_data(**bgp)), edit)
        labs.append(lab)
        lab.build()
        return lab
    yield make
    for lab in labs:
        lab.stop()


@pytest.fixture(scope="module")
def gr_lab():
    """The graceful restart lab, built when the module starts: its
    neighbours must be older than FRR's restart time when the ToR restarts
    (see the module docstring); the BFD checks run meanwhile."""
    need_frr()
    lab = GrLab(build(lab_data(graceful_restart=True)))
    try:
        lab.build()
        yield lab
    finally:
        lab.stop()


@pytest.fixture(autouse=True)
def _gr_lab_early(request):
    """Every test of this module starts the graceful restart lab first (once)."""
    request.getfixturevalue("gr_lab")


# --- BFD ------------------------------------------------------------------------

def detect(lab):
    """Cut the ToR's uplink; the seconds until the spine's session with it is
    down and until the hypervisor's route is gone from the spine's kernel."""
    assert lab.established("spine1") == {SPINE_SIDE} and lab.kernel_has("spine1", HV_ROUTE)  # positive control
    start = lab.cut("tor-r01", "sp1")
    wait_for(lambda: SPINE_SIDE not in lab.established("spine1"), "spine: session with the ToR down",
             HOLDTIME + 6, 0.05)
    down = time.monotonic() - start
    wait_for(lambda: not lab.kernel_has("spine1", HV_ROUTE), "spine: the hypervisor's route withdrawn",
             HOLDTIME + 6, 0.05)
    return down, time.monotonic() - start


def test_bfd_detects_a_silent_link_within_a_second_not_the_hold_time(make_lab):
    lab = make_lab(bfd=True)
    assert " neighbor TOR bfd" in config_lines(lab.fab, lab.fab.hosts["spine1"])
    down, gone = detect(lab)
    report("BFD on: silent uplink -> spine's session down in %.2f s, route gone in %.2f s (holdtime %d s)"
           % (down, gone, HOLDTIME))
    assert gone < BFD_BOUND, gone
    reason = lab.json("spine1", "show bgp neighbors %s" % SPINE_SIDE)[SPINE_SIDE]
    assert "BFD" in reason.get("lastNotificationReason", "") + reason.get("lastResetDueTo", ""), reason


def test_control_without_bfd_the_hold_time_decides(make_lab):
    lab = make_lab(bfd=False)
    down, gone = detect(lab)
    report("BFD off: silent uplink -> spine's session down in %.2f s, route gone in %.2f s (holdtime %d s)"
           % (down, gone, HOLDTIME))
    # the hold timer runs from the last keepalive (every 3 s): 6 to 9 s after the cut
    assert HOLDTIME - 3 - 0.5 < down < HOLDTIME + 3, down


# --- bfdd restart ---------------------------------------------------------------

def restart_bfdd(lab):
    """Kill the ToR's bfdd and, once the spine's BFD session with it is down
    (the neighbours saw the silence), start it again. Returns the sessions of
    the ToR and its neighbours before and once BFD is up again, and the
    seconds in between."""
    before = {h: lab.sessions(h) for h in HOSTS}
    start = time.monotonic()
    lab.kill("tor-r01", "bfdd", signal.SIGKILL)
    wait_for(lambda: lab.json("spine1", "show bfd peers")[0]["status"] != "up", "spine: BFD down", 10, 0.05)
    lab.start("tor-r01", ("bfdd",))
    lab.settle()
    return before, {h: lab.sessions(h) for h in HOSTS}, time.monotonic() - start


def test_bfdd_restart_resets_the_bgp_sessions(make_lab):
    """What the project renders (bfd and graceful restart): a bfdd restart is a
    BFD Down for the neighbours, and BFD Down resets BGP (Hard Reset: no
    graceful restart either)."""
    lab = make_lab(bfd=True, graceful_restart=True)
    lab.idempotent()
    before, after, dummy = restart_bfdd(lab)
    reset = sorted("%s-%s" % (h, p) for h in HOSTS for p in after[h] if after[h][p][1] > before[h][p][1])
    report("bfdd restart (bfd + graceful restart): sessions reset: %s" % ", ".join(reset))
    assert reset, (before, after)
    assert "spine1-%s" % SPINE_SIDE in reset and "hv-r01-01-%s" % HV_SIDE in reset


def test_check_control_plane_failure_keeps_sessions_but_blinds_bfd(make_lab):
    """``neighbor G bfd check-control-plane-failure`` with graceful restart:
    BGP ignores BFD Down from a neighbour in graceful restart whose C bit is
    clear. FRR 8.4's bfdd reads the F bit where the C bit is (BFD_GETCBIT,
    fixed in FRR 10.1 by commit d315382d47), so every BFD Down is ignored:
    sessions survive a bfdd restart, and a dead link is again found by the
    hold time (after which graceful restart keeps the stale routes)."""
    lab = make_lab(with_ccpf, bfd=True, graceful_restart=True)
    assert " neighbor TOR %s" % CCPF in lab.vtysh("spine1", "show running-config")
    before, after, took = restart_bfdd(lab)
    # Whether a session survives depends on the same bit mix-up (timing): no reset in the lab's
    # first runs, one reset (tor-r01 <-> hv-r01-01) in a run under heavy load. Recorded, not
    # asserted: FRR 8.4's behaviour with a setting the project does not render (docs/failures.md).
    reset = sorted("%s-%s" % (host, peer) for host in HOSTS for peer, (state, conns, up_ms) in after[host].items()
                   if state != "Established" or conns != before[host][peer][1])
    report("bfdd restart (bfd + graceful restart + check-control-plane-failure): sessions reset: %s"
           % (", ".join(reset) or "none"))
    # ... and a dead link: whether BFD's Down is ignored too depends on the F bit of the last BFD
    # packet bfdd read as the C bit (a Poll/Final sequence sets it): found by the hold time in the
    # lab's first runs (8.2 s, twice), by BFD in a CI run (0.75 s). Recorded, not asserted either way:
    # FRR 8.4's behaviour with a setting the project does not render. Detected it must be.
    start = lab.cut("tor-r01", "sp1")
    wait_for(lambda: SPINE_SIDE not in lab.established("spine1"), "spine: session with the ToR down",
             HOLDTIME + 6, 0.05)
    down = time.monotonic() - start
    report("bfd + graceful restart + check-control-plane-failure: silent uplink -> session down in %.2f s (%s)"
           % (down, "BFD" if down <= BFD_BOUND else "hold time"))


# --- graceful restart -----------------------------------------------------------

def restart_tor_bgpd(lab, sig):
    """Ping across the ToR while its bgpd is killed with ``sig`` and
    restarted; (sent, lost, whether the neighbours kept the ToR's routes all
    along, whether the ToR's kernel kept its routes all along)."""
    assert lab.established("tor-r01") == PEERS["tor-r01"]
    ping = lab.ping()
    wait_for(lambda: lab.kernel_has("hv-r01-01", SPINE_ROUTE) and forwards(lab), "ping running", 10, 0.1)
    kept = {"neighbours": True, "tor": True}

    def look():
        kept["neighbours"] &= lab.kernel_has("spine1", HV_ROUTE) and lab.kernel_has("hv-r01-01", SPINE_ROUTE)
        kept["tor"] &= lab.kernel_has("tor-r01", HV_ROUTE) and lab.kernel_has("tor-r01", SPINE_ROUTE)
    lab.kill("tor-r01", "bgpd", sig)
    look()
    lab.restart_bgpd("tor-r01")

    def recovered():
        look()
        return lab.established("tor-r01") == PEERS["tor-r01"] and all(
            lab.rib(h).get(p) for h, p in (("spine1", HV_ROUTE), ("hv-r01-01", SPINE_ROUTE),
                                           ("tor-r01", HV_ROUTE), ("tor-r01", SPINE_ROUTE)))
    wait_for(recovered, "the ToR's sessions and routes back", 60, 0.1)
    end = time.monotonic() + 1  # the routes reach the kernels a moment after the RIBs
    while time.monotonic() < end:
        look()
        time.sleep(0.1)
    sent, lost = stop_ping(ping)
    return sent, lost, kept["neighbours"], kept["tor"]


def forwards(lab):
    """One reply from the spine: forwarding across the ToR works before the fault."""
    return subprocess.run(["ip", "netns", "exec", lab.ns["hv-r01-01"], "ping", "-n", "-q", "-c", "1", "-W", "1",
                           "-I", LOOPBACK["hv-r01-01"], LOOPBACK["spine1"]], capture_output=True).returncode == 0


def test_control_without_graceful_restart_a_bgpd_restart_drops_traffic(make_lab):
    lab = make_lab(graceful_restart=False)
    sent, lost, neighbours_kept, tor_kept = restart_tor_bgpd(lab, signal.SIGKILL)
    report("no graceful restart, ToR bgpd killed and restarted: %d of %d pings lost (%.1f s)"
           % (lost, sent, lost * PING_INTERVAL))
    assert not neighbours_kept and not tor_kept
    assert lost >= 20, (sent, lost)  # at least 1 s without forwarding


def test_graceful_restart_keeps_forwarding_while_bgpd_restarts(gr_lab):
    lab = gr_lab
    assert " bgp graceful-restart preserve-fw-state" in config_lines(lab.fab, lab.fab.hosts["tor-r01"])
    lab.idempotent()
    # the neighbours must be past their own startup (the module docstring)
    wait_for(lambda: time.monotonic() - lab.started > RESTART_TIME + 2, "the neighbours older than %d s"
             % RESTART_TIME, RESTART_TIME + 60, 1)
    lab.settle()
    sent, lost, neighbours_kept, tor_kept = restart_tor_bgpd(lab, signal.SIGKILL)
    report("graceful restart, ToR bgpd killed (SIGKILL) and restarted: %d of %d pings lost" % (lost, sent))
    assert neighbours_kept and tor_kept
    assert lost <= 3, (sent, lost)
    # A clean stop (SIGTERM: frrinit.sh/watchfrr restarting bgpd): no
    # NOTIFICATION to graceful restart peers, so the neighbours keep the
    # ToR's routes. Whether the ToR's own kernel keeps them is a race inside
    # FRR (bgpd's route deletes on exit against zebra's handling of a
    # graceful client's disconnect): lost in most runs, kept in one CI run
    # on a loaded machine. Only the neighbours' side is a guarantee; the
    # ToR's side is reported, not asserted (docs/failures.md).
    lab.settle()
    sent, lost, neighbours_kept, tor_kept = restart_tor_bgpd(lab, signal.SIGTERM)
    report("graceful restart, ToR bgpd stopped (SIGTERM) and restarted: %d of %d pings lost (%.1f s); "
           "neighbours kept the routes: %s, the ToR's kernel: %s" % (lost, sent, lost * PING_INTERVAL,
                                                                      neighbours_kept, tor_kept))
    assert neighbours_kept
