"""Rendered FRR configurations pass FRR's own parser (vtysh --dryrun)."""

import copy

import pytest

from helpers import example_in_mode, render, sh


from fabric_data import BASE, dual_stack_border, gateway_mode, static6, two_tors  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines  # noqa: E402


def dryrun(path):
    return sh("vtysh", "--dryrun", "-f", str(path), check=False)


def test_example_configs_pass_vtysh_dryrun(rendered):
    confs = sorted(rendered.glob("*/etc/frr/frr.conf"))
    assert len(confs) == 10
    for conf in confs:
        proc = dryrun(conf)
        assert proc.returncode == 0, (conf, proc.stdout, proc.stderr)
        assert conf.read_text().startswith("#\n# Managed by ocs-l3")  # a comment to vtysh and frr-reload.py
    daemons = (rendered / "hv-r01-01/etc/frr/daemons").read_text()
    assert "bgpd=yes" in daemons and "bfdd=yes" in daemons and "staticd=yes" in daemons


def test_example_configs_in_gateway_mode_pass_vtysh_dryrun(tmp_path):
    """The example inventory with nat_mode gateway, rendered by the playbook:
    the gateways peer with the border, the spine does not."""
    inv = example_in_mode(tmp_path / "inv", "gateway")
    build = tmp_path / "build"
    proc = render(str(build), str(inv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    confs = sorted(build.glob("*/etc/frr/frr.conf"))
    assert len(confs) == 10
    for conf in confs:
        proc = dryrun(conf)
        assert proc.returncode == 0, (conf, proc.stdout, proc.stderr)
    spine = (build / "spine1/etc/frr/frr.conf").read_text()
    assert "198.18.0.254" not in spine
    for gw in ("gw-01", "gw-02"):
        text = (build / gw / "etc/frr/frr.conf").read_text()
        assert " neighbor 198.18.0.254 remote-as 65530\n" in text
        assert "  neighbor SPINE default-originate route-map OCS-HAS-BORDER-DEFAULT\n" in text


def _static(d):
    d["fabric"]["routing_mode"] = "static"


def _gateway(d):
    gateway_mode(d)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        d["hostvars"][name].pop("ocs_public_address")


def _knobs(d):
    d["fabric"]["bgp"] = {"bfd": True, "graceful_restart": True, "keepalive": 1, "holdtime": 3, "password": "s3cret"}


def _unnumbered(d):
    d["hostvars"]["hv-r01-01"]["ocs_uplinks"] = [{"interface": "eth0"}]
    d["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp5", "host": "hv-r01-01"})
    d["hostvars"]["tor-r02"]["ocs_uplinks"] = [{"interface": "eth0"}]
    d["hostvars"]["spine1"]["ocs_downlinks"] = [{"interface": "swp2", "host": "tor-r02"}]


def _sessions(d):
    """Issue 18: border settings (a second border ASN: multipath-relax), per-link passwords numbered
    and unnumbered, the fleet password where a session still uses it."""
    _knobs(d)
    _unnumbered(d)
    d["fabric"]["border"] = {"keepalive": 5, "holdtime": 15, "bfd": True, "password": "b0rder"}
    d["hostvars"]["spine1"]["ocs_uplinks"][0]["address"] = "198.18.0.249/29"
    d["fabric"]["border_peers"].append({"address": "198.18.0.250", "asn": 65531, "bfd": False, "holdtime": 60,
                                        "password": "b0rder-2"})
    d["hostvars"]["hv-r01-01"]["ocs_uplinks"][0]["password"] = "link-u"
    d["hostvars"]["hv-r01-02"]["ocs_uplinks"][1]["password"] = "link-b"


@pytest.mark.parametrize("mutate", [_static, _gateway, _knobs, _unnumbered, _sessions],
                         ids=lambda f: f.__name__[1:])
def test_variants_pass_vtysh_dryrun(tmp_path, mutate):
    data = copy.deepcopy(BASE)
    mutate(data)
    fab = build(data)
    for name, host in fab.hosts.items():
        path = tmp_path / ("%s.conf" % name)
        path.write_text("\n".join(config_lines(fab, host)) + "\n")
        proc = dryrun(path)
        assert proc.returncode == 0, (name, path.read_text(), proc.stdout, proc.stderr)


def _gateway6(d):
    """Gateway mode, dual stack: no IPv6 border session (the spines are the IPv6 edge, nat_mode host)."""
    _gateway(d)
    d["fabric"]["border_peers"][0].pop("address6")
    d["hostvars"]["spine1"]["ocs_uplinks"][0].pop("address6")


@pytest.mark.parametrize("mutate", [lambda d: None, static6, _gateway6, _knobs, _unnumbered, _sessions, two_tors],
                         ids=["base", "static", "gateway", "knobs", "unnumbered", "sessions", "two_tors"])
def test_dual_stack_variants_pass_vtysh_dryrun(tmp_path, mutate):
    """Issue 21: every host's frr.conf of a dual-stack fabric (IPv6 family, IPv6 border session),
    in each variant, passes FRR's parser; each carries an IPv6 family where it has sessions."""
    data = dual_stack_border(copy.deepcopy(BASE))
    mutate(data)
    fab = build(data)
    families = 0
    for name, host in fab.hosts.items():
        path = tmp_path / ("%s.conf" % name)
        lines = config_lines(fab, host)
        families += " address-family ipv6 unicast" in lines
        path.write_text("\n".join(lines) + "\n")
        proc = dryrun(path)
        assert proc.returncode == 0, (name, path.read_text(), proc.stdout, proc.stderr)
    assert families >= 4


def test_a_broken_config_fails_validation(tmp_path):
    """What the role's `validate:` relies on: an error gives a non-zero rc."""
    path = tmp_path / "bad.conf"
    path.write_text("router bgp 65101\n neighbor 198.18.1.11 remote-as 65200\n neighbor 198.18.1.11 bogus\n")
    assert dryrun(path).returncode != 0
