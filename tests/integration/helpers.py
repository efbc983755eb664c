"""Helpers for tests that run ansible-playbook and the real kernel tools (fixtures in conftest.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(ROOT, "inventory", "example")
PROBE = os.path.join(ROOT, "tests", "probe", "ocs-probe")
"""The one test probe of the labs and the molecule fabric (serve, ask, flows, bulk, UDP, ping)."""


def ansible_env(**extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_DEPRECATION_WARNINGS="0", PATH=BIN + os.pathsep + os.environ["PATH"])
    env.update(extra)
    return env


def render(build_dir, inventory=EXAMPLE, *extra):
    """Run playbooks/render.yml; return the CompletedProcess."""
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, os.path.join(ROOT, "playbooks", "render.yml"),
           "-e", "ocs_render_build_dir=%s" % build_dir, *extra]
    return subprocess.run(cmd, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """The example inventory rendered once for the session."""
    build = tmp_path_factory.mktemp("build")
    proc = render(str(build))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return build


def inventory_copy(tmp_path, host, mutate, name="inv"):
    """A copy of the example inventory at ``tmp_path/name`` whose host_vars of
    ``host`` went through ``mutate(data)``; returns its directory."""
    inv = tmp_path / name
    shutil.copytree(EXAMPLE, inv)
    path = inv / "host_vars" / (host + ".yml")
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data))
    return inv


def run_module(netns, module, args, check=False):
    """Run a collection module (``ocs.l3.NAME``) with ``ansible localhost`` inside ``netns``; return its result.
    ``args``: the module arguments as ``k=v`` text, JSON text, or a mapping."""
    if not isinstance(args, str):
        args = json.dumps(args)
    cmd = ["ip", "netns", "exec", netns, os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
           "-m", module, "-a", args, "-e",
           "ansible_python_interpreter=%s" % os.path.join(BIN, "python")]
    if check:
        cmd += ["--check", "--diff"]
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class NetnsLab:
    """Network namespaces named ``<prefix><tag>-<key>``, veth links between
    them, and the processes started in them; ``close()`` removes all of it.
    ``scripts``: {file name: text} written into ``tmp`` for the processes."""

    def __init__(self, tmp, prefix, scripts):
        self.tag = uuid.uuid4().hex[:6]
        self.prefix = prefix
        self.tmp = tmp
        self.ns = {}
        self.procs = []
        for name, text in scripts.items():
            (tmp / name).write_text(text)

    def add(self, key):
        name = "%s%s-%s" % (self.prefix, self.tag, key)
        sh("ip", "netns", "add", name)
        self.ns[key] = name
        self.ip(key, "link", "set", "lo", "up")
        return name

    def ip(self, key, *args):
        return sh("ip", "-n", self.ns[key], *args)

    def x(self, key, *cmd, **kw):
        return sh("ip", "netns", "exec", self.ns[key], *cmd, **kw)

    def run_probe(self, key, *args, **kw):
        """Run ``ocs-probe ARGS`` in namespace ``key`` (a CompletedProcess; check=False unless given)."""
        kw.setdefault("check", False)
        return self.x(key, sys.executable, PROBE, *[str(a) for a in args], **kw)

    def probe_server(self, key, *args, alarm=600):
        """Start ``ocs-probe serve ARGS`` in namespace ``key``, once it listens; stopped by close()."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns[key], sys.executable, PROBE, "--alarm", str(alarm),
                                 "serve"] + [str(a) for a in args], stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def link(self, a, a_if, a_addr, b, b_if, b_addr):
        self.ip(a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", self.ns[b])
        for key, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if addr:
                self.ip(key, "addr", "add", addr, "dev", ifname)
            self.ip(key, "link", "set", ifname, "up")

    def close(self):
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)
        for name in self.ns.values():
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
def netns():
    """A scratch network namespace (root only), removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.fail("this test needs root and iproute2 (make validate installs iproute2)")
    name = "ocs-t-%s" % uuid.uuid4().hex[:8]
    sh("ip", "netns", "add", name)
    sh("ip", "-n", name, "link", "set", "lo", "up")
    yield name
    sh("ip", "netns", "del", name, check=False)


def example_in_mode(inv, mode):
    """A copy of the example inventory at ``inv`` with ``nat_mode`` set; in gateway mode each NAT
    gateway gets its border link (there the gateways are the edge, issue 15). Returns ``inv``."""
    shutil.copytree(EXAMPLE, inv)
    path = inv / "group_vars" / "all" / "fabric.yml"
    data = yaml.safe_load(path.read_text())
    data["ocs_fabric"]["nat_mode"] = mode
    path.write_text(yaml.safe_dump(data))
    if mode == "gateway":
        for gw in ("gw-01", "gw-02"):
            hv_path = inv / "host_vars" / (gw + ".yml")
            hv = yaml.safe_load(hv_path.read_text())
            hv["ocs_uplinks"].append({"interface": "eth1", "peer": "198.18.0.254"})
            hv_path.write_text(yaml.safe_dump(hv))
    return inv


def write_inventory_dir(path, groups, hosts, settings):
    """An inventory directory at ``path`` (a pathlib.Path): hosts.yml, group_vars/all/fabric.yml, host_vars/."""
    os.makedirs(path / "host_vars")
    os.makedirs(path / "group_vars" / "all")
    (path / "hosts.yml").write_text(yaml.safe_dump(groups))
    (path / "group_vars" / "all" / "fabric.yml").write_text(yaml.safe_dump(settings))
    for name, hv in hosts.items():
        (path / "host_vars" / ("%s.yml" % name)).write_text(yaml.safe_dump(hv))


def stop_daemonized(pidfile, name="dhclient"):
    """Stop the process a pidfile names (and remove the file) if it is still ``name``: a
    ``dhclient -1`` that got its lease daemonizes to renew. Nothing when there is no pidfile."""
    try:
        with open(pidfile) as fh:
            pid = int(fh.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return
    os.unlink(pidfile)
    try:
        with open("/proc/%d/cmdline" % pid) as fh:
            if pid and name in fh.read():
                os.kill(pid, signal.SIGTERM)
    except FileNotFoundError:
        pass  # already gone


class DnsmasqLab:
    """A hypervisor namespace running the real dnsmasq on files from a scratch directory (the DHCP
    labs, IPv4 and IPv6). A subclass says where a configuration and host file come from:
    ``files(source)`` -> (dnsmasq.conf text, host file text); their production paths are moved to
    the scratch directory. ``close()`` stops dnsmasq and removes every namespace and directory."""

    def __init__(self, prefix, hv_name, client_files):
        self.id = uuid.uuid4().hex[:6]
        # dnsmasq drops root for nobody and re-reads the host file on SIGHUP: a world-readable directory.
        self.dir = tempfile.mkdtemp(prefix=prefix + "-")
        os.chmod(self.dir, 0o755)
        self.stage = tempfile.mkdtemp(prefix=prefix + "-stage-")  # atomic writes: temp file elsewhere, rename
        self.hv = hv_name % self.id
        self.namespaces = [self.hv]
        self.dnsmasq = None
        sh("ip", "netns", "add", self.hv)
        sh("ip", "-n", self.hv, "link", "set", "lo", "up")
        for name, content, mode in client_files:
            self.path(name, content, mode)

    def files(self, source):
        raise NotImplementedError

    def path(self, name, content=None, mode=0o644):
        full = os.path.join(self.dir, name)
        if content is not None:
            with open(full, "w") as fh:
                fh.write(content)
            os.chmod(full, mode)
        return full

    def install_hosts(self, source):
        """Replace the host file atomically (temp file outside its directory, then rename)."""
        tmp = os.path.join(self.stage, "dhcp-hosts")
        with open(tmp, "w") as fh:
            fh.write(self.files(source)[1])
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path("dhcp-hosts"))

    def start_dnsmasq(self, source):
        from ansible_collections.ocs.l3.plugins.module_utils.dhcp import HOSTS_PATH, LEASE_PATH
        conf = self.files(source)[0]
        for prod, here in ((HOSTS_PATH, self.path("dhcp-hosts")), (LEASE_PATH, self.path("leases"))):
            assert conf.count(prod) == 1
            conf = conf.replace(prod, here)
        path = self.path("dnsmasq.conf", conf)
        test = sh("dnsmasq", "--test", "-C", path, check=False)
        assert test.returncode == 0, test.stderr
        self.install_hosts(source)
        self.dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", self.hv, "dnsmasq", "-k", "-C", path, "--log-dhcp",
             "--log-facility=" + self.path("dnsmasq.log")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.wait_log("read %s" % self.path("dhcp-hosts"), 1)
        return self.dnsmasq.pid

    def log(self):
        try:
            with open(self.path("dnsmasq.log")) as fh:
                return fh.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, count, timeout=10):
        deadline = time.monotonic() + timeout
        while self.log().count(needle) < count:
            assert self.dnsmasq.poll() is None, "dnsmasq exited: %s" % self.dnsmasq.stderr.read().decode()
            assert time.monotonic() < deadline, "no %r in the dnsmasq log:\n%s" % (needle, self.log())
            time.sleep(0.05)

    def sighup(self, source):
        reads = self.log().count("read %s" % self.path("dhcp-hosts"))
        self.install_hosts(source)
        os.kill(self.dnsmasq.pid, signal.SIGHUP)
        self.wait_log("read %s" % self.path("dhcp-hosts"), reads + 1)

    def close(self):
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.stage, ignore_errors=True)
