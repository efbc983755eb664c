"""Session settings (issue 18): the border sessions' timers, BFD and password (ocs_fabric.border, each
border peer's own), multipath across border ASNs, per-link passwords (ocs_uplinks[].password) on both
ends of a fabric session; their validation (one named problem each, the password never shown)."""

import pytest

from fabric_data import gateway_mode, problems_of
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import border_session, config_lines, has_secret, policy
from ansible_collections.ocs.l3.plugins.module_utils.host_policy import bfd_peers, host_rules

BORDER = "198.18.0.254"
SECOND = "198.18.0.250"  # a second border peer on the spine's border link (198.18.0.252/30 in set_link)
NOT_SHOWN = "must be 1-80 characters of letters, digits and ._~+=@%^*- (the value is not shown)"


def hv(d, name):
    return d["hostvars"][name]


def second_peer(d, asn=65531, **settings):
    """A second border peer, inside the spine's border link (widened to a /29)."""
    hv(d, "spine1")["ocs_uplinks"][0]["address"] = "198.18.0.249/29"
    d["fabric"]["border_peers"].append(dict(address=SECOND, asn=asn, **settings))


def lines_of(fab, name):
    return config_lines(fab, fab.hosts[name])


def own(lines, key):
    """The session's own lines (not its remote-as or peer-group)."""
    return [ln for ln in lines if ln.startswith(" neighbor %s " % key) and "remote-as" not in ln
            and "peer-group" not in ln]


# --- border sessions ------------------------------------------------------------

def test_border_defaults_are_per_neighbor_timers_10_30_no_bfd_no_password(data):
    fab = build(data)
    assert border_session(fab, fab.border_peers[0][0]) == {"bfd": False, "keepalive": 10, "holdtime": 30,
                                                           "password": None}
    lines = lines_of(fab, "spine1")
    assert own(lines, BORDER) == [" neighbor %s timers 10 30" % BORDER]
    assert [ln for ln in lines if ln.startswith(" neighbor BORDER ")] == [" neighbor BORDER peer-group"]
    i = lines.index(" neighbor %s remote-as 65530" % BORDER)
    assert lines[i:i + 3] == [" neighbor %s remote-as 65530" % BORDER, " neighbor %s peer-group BORDER" % BORDER,
                              " neighbor %s timers 10 30" % BORDER]  # FRR's running-config order
    assert " bgp bestpath as-path multipath-relax" not in lines


def test_fabric_border_settings_and_a_peers_own_override_them(data):
    data["fabric"]["border"] = {"keepalive": 5, "holdtime": 15, "bfd": True, "password": "b0rder-key"}
    second_peer(data, keepalive=20, holdtime=60, bfd=False, password="other-key")
    fab = build(data)
    lines = lines_of(fab, "spine1")
    assert own(lines, BORDER) == [" neighbor %s bfd" % BORDER, " neighbor %s password b0rder-key" % BORDER,
                                  " neighbor %s timers 5 15" % BORDER]
    assert own(lines, SECOND) == [" neighbor %s password other-key" % SECOND, " neighbor %s timers 20 60" % SECOND]
    # fabric sessions keep ocs_fabric.bgp's knobs (none of the border's)
    assert own(lines, "TOR") == [" neighbor TOR ttl-security hops 1", " neighbor TOR timers 3 9"]


def test_a_peer_inherits_what_it_does_not_set(data):
    data["fabric"]["border"] = {"keepalive": 20, "holdtime": 90, "password": "b0rder-key"}
    data["fabric"]["border_peers"][0]["holdtime"] = 120
    fab = build(data)
    assert own(lines_of(fab, "spine1"), BORDER) == [" neighbor %s password b0rder-key" % BORDER,
                                                    " neighbor %s timers 20 120" % BORDER]


def test_gateway_mode_border_settings_on_the_gateways(data):
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        hv(data, name).pop("ocs_public_address")
    data["fabric"]["border_peers"][0].update(bfd=True, password="gw-border")
    fab = build(data)
    assert own(lines_of(fab, "gw-01"), BORDER) == [" neighbor %s bfd" % BORDER, " neighbor %s password gw-border"
                                                   % BORDER, " neighbor %s timers 10 30" % BORDER]
    assert BORDER not in "\n".join(lines_of(fab, "spine1"))


def test_multipath_relax_only_with_border_peers_of_several_asns(data):
    second_peer(data, asn=65530)  # one upstream ASN: equal AS paths already
    assert " bgp bestpath as-path multipath-relax" not in lines_of(build(data), "spine1")
    data["fabric"]["border_peers"][1]["asn"] = 65531
    fab = build(data)
    lines = lines_of(fab, "spine1")
    assert lines.count(" bgp bestpath as-path multipath-relax") == 1
    assert lines.index(" bgp bestpath as-path multipath-relax") < lines.index(" neighbor BORDER peer-group")
    assert not any("multipath-relax" in ln for ln in lines_of(fab, "tor-r01"))


def test_multipath_relax_on_gateways_with_border_peers_of_several_asns(data):
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        hv(data, name).pop("ocs_public_address")
    data["fabric"]["border_peers"].append({"address": "198.18.0.253", "asn": 65531})
    fab = build(data)
    lines = lines_of(fab, "gw-01")  # its border link is unnumbered: every border peer
    assert [n.key for n in policy(fab, fab.hosts["gw-01"]).neighbors if n.group == "BORDER"] == \
        ["198.18.0.253", BORDER]
    assert lines.count(" bgp bestpath as-path multipath-relax") == 1
    assert lines_of(fab, "spine1").count(" bgp bestpath as-path multipath-relax") == 1  # as before (gateways)


def test_border_bfd_opens_bfd_from_that_peer_only(data):
    second_peer(data, bfd=True)
    fab = build(data)
    spine = fab.hosts["spine1"]
    assert bfd_peers(fab, spine) == {SECOND}
    rules = host_rules(fab, spine)
    assert any(r.startswith("-A OCS-HOST -s %s/32 -p udp" % SECOND) and "ocs-bfd" in r for r in rules)
    assert not any(r.startswith("-A OCS-HOST -s %s/32 -p udp" % BORDER) for r in rules)
    assert not any("ocs-bfd" in r for r in host_rules(fab, fab.hosts["tor-r01"]))
    data["fabric"]["bgp"] = {"bfd": True}  # fabric BFD: the fabric sessions, still not the border's
    fab = build(data)
    assert bfd_peers(fab, fab.hosts["spine1"]) == {SECOND, "198.18.0.11", "198.18.0.12", "198.18.0.21"}


# --- per-link passwords ---------------------------------------------------------------

def test_per_link_password_on_both_ends_and_the_fleet_one_only_where_used(data):
    data["fabric"]["bgp"] = {"password": "fleet-key"}
    hv(data, "hv-r01-02")["ocs_uplinks"][0]["password"] = "link-a"
    hv(data, "hv-r01-02")["ocs_uplinks"][1]["password"] = "link-b"
    hv(data, "tor-r01")["ocs_uplinks"][0]["password"] = "tor-up"
    fab = build(data)
    hv2 = lines_of(fab, "hv-r01-02")
    assert own(hv2, "TOR") == [" neighbor TOR ttl-security hops 1", " neighbor TOR timers 3 9"]
    assert own(hv2, "198.18.1.1") == [" neighbor 198.18.1.1 password link-a"]
    assert own(hv2, "198.18.1.129") == [" neighbor 198.18.1.129 password link-b"]
    assert not any("fleet-key" in ln for ln in hv2)
    tor = lines_of(fab, "tor-r01")
    assert " neighbor HV password fleet-key" in tor  # hv-r01-01 has no link password
    assert own(tor, "198.18.1.12") == [" neighbor 198.18.1.12 password link-a"]
    assert own(tor, "198.18.1.140") == [" neighbor 198.18.1.140 password link-b"]
    assert own(tor, "198.18.1.11") == []
    assert own(tor, "198.18.0.1") == [" neighbor 198.18.0.1 password tor-up"]
    assert " neighbor SPINE password fleet-key" not in tor  # its one uplink has its own
    spine = lines_of(fab, "spine1")
    assert own(spine, "198.18.0.11") == [" neighbor 198.18.0.11 password tor-up"]
    assert " neighbor TOR password fleet-key" in spine  # tor-r02 uses it
    assert "link-a" not in "\n".join(lines_of(fab, "hv-r01-01"))


def test_a_hypervisor_with_only_its_own_keys_gets_no_fleet_password_in_any_file(data):
    data["fabric"]["bgp"] = {"password": "fleet-key"}
    for i, key in enumerate(("link-a", "link-b")):
        hv(data, "hv-r01-02")["ocs_uplinks"][i]["password"] = key
    fab = build(data)
    arts = fabric_artifacts(fab)

    def text(name):
        return "\n".join(str(v) for art in arts[name] for v in art.vars.values())
    assert "fleet-key" not in text("hv-r01-02")
    assert "link-a" in text("hv-r01-02") and "link-b" in text("hv-r01-02")
    assert "fleet-key" in text("hv-r01-01") and "link-a" not in text("hv-r01-01")
    assert "link-a" not in text("hv-r02-01") and "link-a" not in text("spine1")


def test_unnumbered_per_link_password_on_both_ends(data):
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"] = [{"interface": "eth0", "password": "unnum-key"}]
    data["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp5", "host": "hv-r01-01"})
    fab = build(data)
    assert own(lines_of(fab, "hv-r01-01"), "eth0") == [" neighbor eth0 password unnum-key"]
    tor = lines_of(fab, "tor-r01")
    i = tor.index(" neighbor swp5 interface peer-group HV")
    assert tor[i:i + 3] == [" neighbor swp5 interface peer-group HV", " neighbor swp5 remote-as 65200",
                            " neighbor swp5 password unnum-key"]


def test_no_password_anywhere_by_default(data):
    fab = build(data)
    for name in fab.hosts:
        assert not any(" password " in ln for ln in lines_of(fab, name)), name


# --- bad input ------------------------------------------------------------------------

def _unnumbered_pair(d, first=None, second=None):
    ups = [{"interface": "eth0"}, {"interface": "eth1"}]
    for up, pw in zip(ups, (first, second)):
        if pw is not None:
            up["password"] = pw
    hv(d, "hv-r01-02")["ocs_uplinks"] = ups
    hv(d, "tor-r01")["ocs_downlinks"].append({"interface": "swp6", "host": "hv-r01-02"})


RULES = [
    ("border not a mapping", lambda d: d["fabric"].update(border="fast"),
     "ocs_fabric.border must be a mapping {bfd, holdtime, keepalive, password}"),
    ("border unknown key", lambda d: d["fabric"].update(border={"hold": 30}),
     "ocs_fabric.border.hold is not a known field (known: bfd, holdtime, keepalive, password)"),
    ("border keepalive 0", lambda d: d["fabric"].update(border={"keepalive": 0}),
     "ocs_fabric.border.keepalive 0 must be an integer from 1 to 65535"),
    ("border holdtime below 3 x keepalive", lambda d: d["fabric"].update(border={"keepalive": 10, "holdtime": 20}),
     "ocs_fabric.border.holdtime 20 must be at least 3 times keepalive 10"),
    ("border keepalive above a third of the default holdtime", lambda d: d["fabric"].update(border={"keepalive": 11}),
     "ocs_fabric.border.holdtime 30 must be at least 3 times keepalive 11"),
    ("border bfd not a bool", lambda d: d["fabric"].update(border={"bfd": "yes"}),
     "ocs_fabric.border.bfd yes must be true or false"),
    ("border password with a space", lambda d: d["fabric"].update(border={"password": "two words"}),
     "ocs_fabric.border.password " + NOT_SHOWN),
    ("border password not a string", lambda d: d["fabric"].update(border={"password": 12345}),
     "ocs_fabric.border.password " + NOT_SHOWN),
    ("peer holdtime below 3 x keepalive", lambda d: second_peer(d, keepalive=5, holdtime=10),
     "ocs_fabric.border_peers[1].holdtime 10 must be at least 3 times keepalive 5"),
    ("peer holdtime below 3 x the fabric's keepalive",
     lambda d: (d["fabric"].update(border={"keepalive": 20, "holdtime": 60}), second_peer(d, holdtime=45)),
     "ocs_fabric.border_peers[1].holdtime 45 must be at least 3 times keepalive 20 (ocs_fabric.border)"),
    ("peer keepalive above a third of the fabric's holdtime", lambda d: second_peer(d, keepalive=11),
     "ocs_fabric.border_peers[1].keepalive 11 is more than a third of holdtime 30 (ocs_fabric.border)"),
    ("peer keepalive 0", lambda d: second_peer(d, keepalive=0),
     "ocs_fabric.border_peers[1].keepalive 0 must be an integer from 1 to 65535"),
    ("peer holdtime a string", lambda d: second_peer(d, holdtime="30s"),
     "ocs_fabric.border_peers[1].holdtime 30s must be an integer from 3 to 65535"),
    ("peer bfd not a bool", lambda d: second_peer(d, bfd="on"),
     "ocs_fabric.border_peers[1].bfd on must be true or false"),
    ("peer password with a newline", lambda d: second_peer(d, password="pw\nneighbor x"),
     "ocs_fabric.border_peers[1].password " + NOT_SHOWN),
    ("peer unknown key", lambda d: second_peer(d, timers=[10, 30]),
     "ocs_fabric.border_peers[1].timers is not a known field (known: address, asn, bfd, holdtime, keepalive, "
     "password)"),
    ("link password bad", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(password="p'w"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].password " + NOT_SHOWN),
    ("link password too long", lambda d: hv(d, "tor-r01")["ocs_uplinks"][0].update(password="x" * 81),
     "tors.tor-r01.ocs_uplinks[0].password " + NOT_SHOWN),
    ("link password in static mode",
     lambda d: (d["fabric"].update(routing_mode="static"), hv(d, "hv-r01-01")["ocs_uplinks"][0].update(password="k1")),
     "hypervisors.hv-r01-01.ocs_uplinks[0].password is set, but with routing_mode static hypervisor hv-r01-01 has no "
     "BGP session on eth0"),
    ("link password on a border link", lambda d: hv(d, "spine1")["ocs_uplinks"][0].update(password="k1"),
     "spines.spine1.ocs_uplinks[0].password is set on a border link (peer 198.18.0.254 is a border peer): set that "
     "session's password in its ocs_fabric.border_peers entry or in ocs_fabric.border"),
    ("link password on a gateway's border link in gateway mode",
     lambda d: (gateway_mode(d), hv(d, "gw-01")["ocs_uplinks"][1].update(password="k1")),
     "nat_gateways.gw-01.ocs_uplinks[1].password is set on a border link (peer 198.18.0.254 is a border peer): set "
     "that session's password in its ocs_fabric.border_peers entry or in ocs_fabric.border"),
    ("unnumbered uplinks with different passwords", lambda d: _unnumbered_pair(d, "k1", "k2"),
     "hypervisors.hv-r01-02.ocs_uplinks[1].password is set, but ocs_uplinks[0] (unnumbered too) has another: a "
     "host's unnumbered uplinks carry one password or none (the tier above tells them apart only by host)"),
    ("unnumbered uplinks, one without a password", lambda d: _unnumbered_pair(d, "k1", None),
     "hypervisors.hv-r01-02.ocs_uplinks[1].password is not set, but ocs_uplinks[0] (unnumbered too) has one: a "
     "host's unnumbered uplinks carry one password or none (the tier above tells them apart only by host)"),
]


@pytest.mark.parametrize("mutate,expected", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(data, mutate, expected):
    mutate(data)
    problems = problems_of(data)
    assert expected in problems, problems


@pytest.mark.parametrize("secret", ["two words", "pw\nneighbor x", "p'w", "x" * 81, "s3cr;et"])
def test_a_bad_password_is_never_shown(data, secret):
    data["fabric"]["border"] = {"password": secret}
    data["fabric"]["border_peers"][0]["password"] = secret
    hv(data, "hv-r01-01")["ocs_uplinks"][0]["password"] = secret
    problems = problems_of(data)
    assert len([p for p in problems if p.endswith(NOT_SHOWN)]) == 3, problems
    assert not any(secret in p for p in problems)


def test_valid_settings_render(data):
    data["fabric"]["border"] = {"keepalive": 1, "holdtime": 3, "bfd": False, "password": "a.b_c~d+e=f@g%h^i*j-k"}
    second_peer(data, keepalive=65535 // 3, holdtime=65535, bfd=True)
    _unnumbered_pair(data, "same", "same")
    assert problems_of(data) == []


@pytest.mark.parametrize("mutate", [
    lambda d: d["fabric"].update(bgp={"password": "k"}),
    lambda d: d["fabric"].update(border={"password": "k"}),
    lambda d: d["fabric"]["border_peers"][0].update(password="k"),
    lambda d: hv(d, "hv-r02-01").update(ocs_uplinks=[{"interface": "eth0", "address": "198.18.2.11/25",
                                                      "peer": "198.18.2.1", "password": "k"}]),
], ids=["fleet", "border", "peer", "link"])
def test_the_render_says_when_any_password_is_configured(data, mutate):
    """ocs_frr hides frr.conf's content and diff on every host then (a ToR holds its hypervisors' keys)."""
    assert not has_secret(build(data))
    mutate(data)
    assert has_secret(build(data))
