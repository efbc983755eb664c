"""One apt run per host (issue 19, push cost): site.yml installs every role's packages at once.

What it installs must be what the roles would: the package lists live once (constants.PACKAGES,
the roles read them from the render's contract), the groups each role runs on are read here from
site.yml's own plays, and the manage flags' fallbacks from the roles' defaults.
"""

import os
import shlex
import subprocess

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.ocs.l3.plugins.filter import ocs_l3 as plugin
from ansible_collections.ocs.l3.plugins.module_utils import constants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE = os.path.join(ROOT, "playbooks", "site.yml")
ALL_ON = {role: True for role in constants.PACKAGES}
site_packages = plugin.FilterModule().filters()["ocs_site_packages"]
packages_missing = plugin.FilterModule().filters()["ocs_packages_missing"]
PLAY = "Install the packages of every role, one apt run per host"


def _site():
    with open(SITE) as fh:
        return yaml.safe_load(fh)


def test_each_roles_groups_are_the_plays_site_yml_runs_it_in():
    import jinja2
    env = jinja2.Environment()
    env.filters["bool"] = bool
    seen = {}
    for play in _site():
        # a full run's (the fast path's variables unset)
        hosts = env.from_string(play["hosts"]).render(_ocs_site_hosts={})
        for role in play.get("roles", []):
            name = role["role"].rsplit(".", 1)[-1]
            # the groups; not the fast path's intersection (&{{ _ocs_site_hosts.<role> ... }})
            seen.setdefault(name, set()).update(g for g in hosts.split(":") if not g.startswith("&"))
    for role in constants.PACKAGES:
        assert seen[role] == set(constants.SITE_ROLE_GROUPS[role]), role


def test_the_package_play_comes_before_every_role_play_and_its_fallbacks_are_the_roles_defaults():
    plays = _site()
    names = [p["name"] for p in plays]
    at = names.index(PLAY)
    always = {"ocs.l3.ocs_render", "ocs.l3.ocs_guard"}
    first_role = min(i for i, p in enumerate(plays) if any(r["role"] not in always for r in p.get("roles", [])))
    assert at < first_role
    apt = _task(plays[at], "ansible.builtin.apt")
    assert apt["register"] == "_ocs_site_packages"
    expr = plays[at]["vars"]["_ocs_site_packages_wanted"]
    for role in constants.PACKAGES:
        with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml")) as fh:
            default = yaml.safe_load(fh)["%s_manage_packages" % role]
        assert "'%s': %s_manage_packages | default(%s)" % (role, role, str(default).lower()) in expr, role
        with open(os.path.join(ROOT, "roles", role, "tasks", "main.yml")) as fh:
            assert "_ocs_site_packages is not defined" in fh.read(), "%s's own apt task must skip after it" % role


def _task(play, module):
    return next(t for t in play["tasks"] if module in t)


def _dpkg_command(names):
    """site.yml's raw command for ``names``, printed as Ansible would (map('quote') | join(' '))."""
    plays = _site()
    raw = _task(next(p for p in plays if p["name"] == PLAY), "ansible.builtin.raw")["ansible.builtin.raw"]
    expr = "{{ _ocs_site_packages_wanted | map('quote') | join(' ') }}"
    assert expr in raw
    return raw.replace(expr, " ".join(shlex.quote(n) for n in names))


def test_site_yml_reads_dpkg_in_the_format_the_parser_expects():
    command = _dpkg_command(["frr"])
    assert "-f '%s'" % constants.DPKG_STATUS_FORMAT in command
    # run as an argument list by connections without a shell (molecule's podman connection): no shell syntax
    assert not any(c in command.replace("${", "") for c in "|&;<>$`"), command


def test_the_real_dpkg_query_through_site_yml_s_command(tmp_path):
    # This machine is Debian: dpkg and coreutils are installed, the other two are not packages at all
    # (the last one is quoted: a name never reaches the shell as code).
    canary = tmp_path / "x"
    wanted = ["dpkg", "ocs-l3-no-such-package", "coreutils", "bogus name; touch %s" % canary]
    out = subprocess.run(["/bin/sh", "-c", _dpkg_command(wanted)], capture_output=True, text=True)
    assert out.returncode == 1 and "no packages found matching ocs-l3-no-such-package" in out.stderr
    assert "dpkg ii" in out.stdout
    assert packages_missing(out.stdout, wanted) == wanted[1::2]
    assert not canary.exists()


def test_what_counts_as_installed():
    out = "frr ii \nfrr-pythontools hi \r\niptables rc \nconntrack iU \nnftables iiR\nShared connection closed.\n"
    assert packages_missing(out, ["frr", "frr-pythontools", "iptables", "conntrack", "nftables", "dnsmasq-base"]) \
        == ["iptables", "conntrack", "nftables", "dnsmasq-base"]
    assert packages_missing("", ["frr"]) == ["frr"]
    assert packages_missing("frr ii \n", []) == []
    with pytest.raises(AnsibleFilterError, match="takes dpkg-query's output"):
        packages_missing(None, ["frr"])
    with pytest.raises(AnsibleFilterError, match="takes dpkg-query's output"):
        packages_missing("", "frr")


def test_a_host_gets_the_union_of_its_roles_packages_once():
    assert site_packages(["hypervisors"], ALL_ON) == sorted(
        {"dnsmasq-base", "dnsmasq-utils", "iptables", "frr", "frr-pythontools", "conntrack"})
    assert site_packages(["spines"], ALL_ON) == ["frr", "frr-pythontools", "iptables"]
    assert site_packages(["nat_gateways"], ALL_ON) == ["conntrack", "frr", "frr-pythontools", "iptables", "nftables"]
    assert site_packages(["border"], ALL_ON) == []  # not a fabric host: nothing
    # a role whose packages the operator manages is left out, the others stay
    off = dict(ALL_ON, ocs_frr=False, ocs_nat="false")
    assert site_packages(["hypervisors"], off) == ["dnsmasq-base", "dnsmasq-utils", "iptables"]
    # read as the roles read the same settings (their argument specs: Ansible's booleans)
    assert site_packages(["hypervisors"], dict(off, ocs_frr=1, ocs_nat="no")) == site_packages(
        ["hypervisors"], dict(ALL_ON, ocs_nat=False))


def test_bad_settings_are_named():
    with pytest.raises(AnsibleFilterError, match="ocs_frr_manage_packages must be a boolean, got 'sometimes'"):
        site_packages(["tors"], dict(ALL_ON, ocs_frr="sometimes"))
    with pytest.raises(AnsibleFilterError, match=r"unknown: ocs_bogus, missing: ocs_natgw"):
        site_packages(["tors"], dict({k: v for k, v in ALL_ON.items() if k != "ocs_natgw"}, ocs_bogus=True))
    with pytest.raises(AnsibleFilterError, match="takes a host's group_names"):
        site_packages("tors", ALL_ON)
