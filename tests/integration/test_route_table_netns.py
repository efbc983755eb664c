"""ocs_route_table against a real kernel, in a scratch network namespace."""


from helpers import run_module, sh



def apply(netns, src, check=False):
    """Run the real module inside the namespace; return its result dict."""
    return run_module(netns, "ocs.l3.ocs_route_table", "src=%s" % src, check=check)


def routes(netns, *sel):
    return sh("ip", "-n", netns, "-4", "route", "show", *sel).stdout


def setup_links(netns, *taps):
    for ifname, addr in (("eth0", "198.18.1.12/25"), ("eth1", "198.18.1.140/25")):
        sh("ip", "-n", netns, "link", "add", ifname, "type", "veth", "peer", "name", ifname + "p")
        sh("ip", "-n", netns, "addr", "add", addr, "dev", ifname)
        sh("ip", "-n", netns, "link", "set", ifname, "up")
        sh("ip", "-n", netns, "link", "set", ifname + "p", "up")
    for tap in taps:
        sh("ip", "-n", netns, "link", "add", tap, "type", "veth", "peer", "name", tap[:12] + "-in")
        sh("ip", "-n", netns, "link", "set", tap, "up")


def test_apply_is_exact_idempotent_and_leaves_others_alone(netns, rendered, tmp_path):
    src = rendered / "hv-r01-02/etc/ocs-l3/routes.batch"
    taps = sorted({ln.split(" dev ")[1].split()[0] for ln in src.read_text().splitlines() if " dev tap" in ln})
    setup_links(netns, *taps)
    sh("ip", "-n", netns, "route", "add", "192.0.2.0/24", "via", "198.18.1.1", "proto", "static")
    sh("ip", "-n", netns, "route", "add", "198.19.1.200/32", "dev", "eth0", "proto", "211")  # stale, ours

    dry = apply(netns, src, check=True)  # check mode: says what it would do, does nothing
    assert dry["changed"] and "route del 198.19.1.200/32 proto 211" in dry["commands"]
    assert "198.19.1.200/32" not in dry["diff"]["after"] and "198.19.1.200/32" in dry["diff"]["before"]
    assert "198.19.1.200 dev eth0" in routes(netns, "proto", "211")

    first = apply(netns, src)
    assert first["changed"], first
    assert first["missing_interfaces"] == []
    ours = routes(netns, "proto", "211")
    assert "198.19.1.200" not in ours
    ours6 = sh("ip", "-n", netns, "-6", "route", "show", "proto", "211").stdout  # the example is dual-stack
    for ln in src.read_text().splitlines():
        if ln.startswith("route replace"):
            dst = ln.split()[2]
            assert dst.replace("/128", "") in ours6 if ":" in dst else dst.replace("/32", "") in ours
    assert "192.0.2.0/24 via 198.18.1.1" in routes(netns)  # someone else's route stays
    for tap in taps:
        addrs = sh("ip", "-n", netns, "-4", "addr", "show", "dev", tap).stdout
        assert "198.19.1.1/24" in addrs and "noprefixroute" in addrs
    assert "198.19.1.0/24" not in routes(netns)  # noprefixroute: no subnet route on any tap

    second = apply(netns, src)
    assert not second["changed"] and second["commands"] == [], second

    # drift: someone deletes an instance route; the next run puts back exactly that
    victim = sh("ip", "-n", netns, "-4", "route", "show", "proto", "211").stdout.split("\n")[0].split()[0]
    sh("ip", "-n", netns, "route", "del", victim, "proto", "211")
    third = apply(netns, src)
    assert third["changed"] and len(third["commands"]) == 1 and victim in third["commands"][0]


def test_missing_interface_is_reported_not_fatal(netns, rendered):
    src = rendered / "hv-r01-01/etc/ocs-l3/routes.batch"
    setup_links(netns)  # no taps at all
    res = apply(netns, src)
    assert not res.get("failed"), res
    assert res["commands"] == ["address replace 203.0.113.11/32 dev lo"]  # only what can be applied
    assert len(res["missing_interfaces"]) == 4
    assert any("interfaces not present" in w for w in res.get("warnings", []))


def test_tor_static_table_with_ecmp(netns, tmp_path):
    src = tmp_path / "routes.batch"
    src.write_text("route replace blackhole 198.19.1.0/24 proto 211\n"
                   "route replace 198.19.1.12/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140\n"
                   "route replace 198.19.1.10/32 via 198.18.1.11 proto 211\n")
    for ifname, addr in (("eth1", "198.18.1.1/25"), ("eth2", "198.18.1.129/25")):
        sh("ip", "-n", netns, "link", "add", ifname, "type", "veth", "peer", "name", ifname + "p")
        sh("ip", "-n", netns, "addr", "add", addr, "dev", ifname)
        sh("ip", "-n", netns, "link", "set", ifname, "up")
        sh("ip", "-n", netns, "link", "set", ifname + "p", "up")
    assert apply(netns, src)["changed"]
    table = routes(netns, "proto", "211")
    assert "blackhole 198.19.1.0/24" in table
    assert "nexthop via 198.18.1.12" in table and "nexthop via 198.18.1.140" in table
    assert not apply(netns, src)["changed"]


def test_routing_sysctls_are_set_kept_for_boot_and_checked_in_the_same_run(netns, tmp_path):
    """sysctl_file: the module sets the settings that differ (this namespace's own), writes the
    sysctl.d file, then applies; a second run changes nothing; check mode sets nothing; a setting
    that cannot be set fails the run before anything is applied, the file not written."""
    src = tmp_path / "routes.batch"
    src.write_text("")
    conf = tmp_path / "sysctl.d" / "60-ocs-l3.conf"
    wanted = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.default.proxy_arp": "1"}

    def read(key):
        return sh("ip", "netns", "exec", netns, "sysctl", "-n", key).stdout.strip()

    for key in wanted:  # a new namespace may inherit the host's values
        sh("ip", "netns", "exec", netns, "sysctl", "-q", "-w", "%s=0" % key)
    args = {"src": str(src), "sysctls": wanted, "sysctl_file": str(conf)}
    would = run_module(netns, "ocs.l3.ocs_route_table", args, check=True)
    assert would["changed"] and would["sysctls_set"] == [
        "net.ipv4.conf.default.proxy_arp=1", "net.ipv4.ip_forward=1", str(conf)]
    assert [read(k) for k in wanted] == ["0", "0"] and not conf.exists()
    first = run_module(netns, "ocs.l3.ocs_route_table", args)
    assert first["changed"] and first["sysctls_set"] == would["sysctls_set"], first
    assert [read(k) for k in wanted] == ["1", "1"]
    assert conf.read_text().splitlines()[1:] == ["net.ipv4.conf.default.proxy_arp = 1", "net.ipv4.ip_forward = 1"]
    again = run_module(netns, "ocs.l3.ocs_route_table", args)
    assert not again["changed"] and "sysctls_set" not in again
    # read-only (0444, even for root): refused before anything, the file untouched
    bad_args = dict(args, sysctls=dict(wanted, **{"kernel.ostype": "Plan9"}), sysctl_file=str(tmp_path / "other.conf"))
    bad = run_module(netns, "ocs.l3.ocs_route_table", bad_args)
    assert bad["failed"] and bad["msg"].startswith("cannot set kernel.ostype to Plan9: ") and \
        bad["msg"].endswith("(nothing applied)"), bad
    assert not (tmp_path / "other.conf").exists()
