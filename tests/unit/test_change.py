"""ocs-change (plugins/plugin_utils/change.py): the fast path's hosts and roles, from the plan of
the example inventory against changed copies (test_plan.py's changes), and its command line."""

import io
import json
import re

import pytest

from ansible_collections.ocs.l3.plugins.plugin_utils import change
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input

from test_plan import EXAMPLE, add_floating_ip, changed, move_instance


@pytest.fixture(scope="module")
def example():
    return load_fabric_input(EXAMPLE)


def run(old, new, *args, extra=()):
    """(exit code, stdout, stderr, the command it would run or None) over plain fabric inputs."""
    ran = []

    def load(spec):
        return {"OLD": old, "NEW": new}[spec]
    out, err = io.StringIO(), io.StringIO()
    rc = change.main(list(args) + ["OLD", "NEW"] + (["--"] + list(extra) if extra else []), out, err, load=load,
                     run=lambda cmd: ran.append(cmd) or 0)
    return rc, out.getvalue(), err.getvalue(), (ran[0] if ran else None)


def test_a_move_converges_both_hypervisors_and_the_racks_tors_with_the_roles_of_their_files(example, tmp_path):
    path = str(tmp_path / "t.json")
    rc, out, err, cmd = run(example, changed(example, move_instance), "--json", path, extra=["-e", "x=1"])
    with open(path) as fh:
        target = json.load(fh)
    assert rc == 0 and err == ""
    assert target["hosts"] == ["hv-r01-01", "hv-r01-02", "tor-r01", "tor-r01b"] and target["gone"] == []
    # the ToRs: their import lists (FRR) and their status expectations (agent)
    assert target["by_host"]["tor-r01"] == ["ocs_agent", "ocs_frr"]
    assert target["by_host"]["hv-r01-02"] == ["ocs_agent", "ocs_dhcp", "ocs_firewall", "ocs_frr", "ocs_nat", "ocs_routes"]
    assert target["roles"] == ["ocs_agent", "ocs_dhcp", "ocs_firewall", "ocs_frr", "ocs_nat", "ocs_routes"]
    assert target["by_role"]["ocs_frr"] == ["hv-r01-01", "hv-r01-02", "tor-r01", "tor-r01b"]
    assert target["by_role"]["ocs_routes"] == ["hv-r01-01", "hv-r01-02"]  # not the ToRs: their tables are the same
    assert cmd[1:-4] == ["-i", "NEW", "ocs.l3.site", "--limit", "hv-r01-01,hv-r01-02,tor-r01,tor-r01b",
                         "--tags", "ocs_agent,ocs_dhcp,ocs_firewall,ocs_frr,ocs_nat,ocs_routes",
                         "--skip-tags", "ocs_setup"]
    assert cmd[-4] == "-e" and cmd[-2:] == ["-e", "x=1"]
    only = json.loads(cmd[-3])["_ocs_site_hosts"]
    assert sorted(only) == target["roles"]
    for role, pattern in only.items():  # each role's plays run on its own hosts only
        assert pattern.startswith("~")
        matched = [h for h in ("hv-r01-01", "hv-r01-02", "hv-r01-010", "tor-r01", "tor-r01b", "xtor-r01")
                   if re.match(pattern[1:], h)]
        assert matched == target["by_role"][role], role
    assert "hv-r01-02: ocs_agent, ocs_dhcp, ocs_firewall, ocs_frr, ocs_nat, ocs_routes" in out
    # every session the same before and after: the FRR tiers reload at once (site.yml)
    assert target["frr_together"] is True and json.loads(cmd[-3])["_ocs_site_frr_together"] is True


def test_a_changed_session_keeps_the_frr_tiers_in_order(example):
    """A host whose BGP sessions change (a password here; a new host, a new uplink alike) may not rely
    on an established session's soft in: site.yml's order, spines first, then ToRs, then hypervisors."""
    bad = changed(example, lambda d: d["hostvars"]["hv-r01-01"]["ocs_uplinks"][0].update(password="x" * 20))
    rc, out, err, cmd = run(example, bad)
    assert rc == 0 and err == "", err
    assert "ocs_frr" in cmd[cmd.index("--tags") + 1]
    assert "_ocs_site_frr_together" not in json.loads(cmd[-1])
    fab, other = change.build(example), change.build(bad)
    assert change.frr_together(fab, fab, ["hv-r01-01", "tor-r01", "spine1"])
    assert not change.frr_together(fab, other, ["hv-r01-01"]) and not change.frr_together(fab, other, ["tor-r01"])
    assert change.frr_together(fab, other, ["hv-r01-02", "spine1"])  # their sessions did not change
    assert not change.frr_together(fab, fab, ["hv-r09-01"])  # a host OLD did not have


def test_site_yml_frr_plays_keep_the_order_unless_the_fast_path_says_together():
    import os
    import jinja2
    import yaml
    from fabric_data import ROOT
    with open(os.path.join(ROOT, "playbooks", "site.yml")) as fh:
        plays = [p for p in yaml.safe_load(fh) if p.get("tags") == ["ocs_frr"]]
    env = jinja2.Environment()
    env.filters["bool"] = bool

    def hosts(**extra):
        return [env.from_string(p["hosts"]).render(_ocs_site_hosts={"ocs_frr": "X"}, **extra) for p in plays]
    assert hosts() == ["spines:nat_gateways:&X", "tors:&X", "hypervisors:&X"]
    together = ["spines:nat_gateways:tors:hypervisors:&X", "tors:&X:!all", "hypervisors:&X:!all"]
    assert hosts(_ocs_site_frr_together=True) == together


def test_a_floating_ip_adds_the_nat_role_where_its_translation_lives(example):
    rc, out, err, cmd = run(example, changed(example, add_floating_ip), "--dry-run")
    assert rc == 0 and cmd is None  # dry run: printed, not run
    assert "--limit hv-r02-01,spine1,tor-r02 " in out and "ocs_nat" in out.split("--tags ")[1]


def test_no_change_runs_nothing(example):
    rc, out, err, cmd = run(example, example)
    assert rc == 0 and cmd is None and "nothing to run" in out


def test_an_invalid_new_inventory_runs_nothing_and_names_the_problem(example):
    bad = changed(example, lambda d: d["hostvars"]["hv-r01-01"]["ocs_instances"][0].update(ip="10.9.9.9"))
    rc, out, err, cmd = run(example, bad)
    assert rc == 1 and cmd is None and "is not valid (nothing run)" in err and "hv-r01-01" in err


def test_every_role_has_its_tag_in_site_yml():
    import os
    import yaml
    from fabric_data import ROOT
    with open(os.path.join(ROOT, "playbooks", "site.yml")) as fh:
        plays = yaml.safe_load(fh)
    tags = {tag for play in plays for tag in play.get("tags", [])}
    roles = {"ocs_routes", "ocs_dhcp", "ocs_nat", "ocs_firewall", "ocs_natgw", "ocs_agent", "ocs_frr"}
    # and the one package play (ocs_setup only: the fast path, which skips ocs_setup, never runs it)
    assert roles | {"always", change.SETUP_TAG} == tags
    assert [p["name"] for p in plays if change.SETUP_TAG in p.get("tags", [])] == [
        "Install the packages of every role, one apt run per host"]
    # every play applying a role is tagged with that role, the others always
    always = {"ocs_render", "ocs_guard"}  # the render, the host leases: every run
    for play in plays:
        named = {r["role"].split(".")[-1] for r in play.get("roles", [])}
        if play["tags"] in (["always"], [change.SETUP_TAG]):
            assert "_ocs_site_hosts" not in play["hosts"], play["name"]
        elif play["tags"] == ["ocs_frr"]:  # and may put the tiers in one play (the test below)
            assert "&{{ _ocs_site_hosts.ocs_frr | default('all') }}" in play["hosts"], play["name"]
        else:  # the fast path narrows each role's plays to the hosts of that role's changed files
            assert play["hosts"].endswith(":&{{ _ocs_site_hosts.%s | default('all') }}" % play["tags"][0]), \
                play["name"]
        if named:
            assert play["tags"] == (["always"] if named <= always else sorted(named)), play["name"]
        elif play["tags"] == [change.SETUP_TAG]:
            # a read of dpkg's database (no change), then apt for what is missing
            assert [sorted(k for k in t if k.startswith("ansible.builtin.")) for t in play["tasks"]] == [
                ["ansible.builtin.raw"], ["ansible.builtin.apt"]], play["name"]
            assert play["tasks"][0]["changed_when"] is False and play["tasks"][1]["ansible.builtin.apt"]["state"] == \
                "present", play["name"]
        else:  # include_role plays: the lock-out check and the finish are always, the prune is routes'
            included = {t["ansible.builtin.include_role"]["name"].split(".")[-1] for t in play["tasks"]}
            assert play["tags"] == (["ocs_routes"] if included == {"ocs_routes"} else ["always"]), play["name"]


def test_setup_tasks_carry_no_rendered_file():
    """The fast path skips the tasks tagged ocs_setup: none of them may install, or depend on, a file
    the render printed (the build directory, whose diff names the hosts and roles), and every role
    the fast path runs keeps its rendered files' tasks untagged."""
    import glob
    import os
    import yaml
    from fabric_data import ROOT
    rendered = set()  # the role variables that name a file in the build directory (transitively)
    role_vars = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "vars", "main.yml")):
        with open(path) as fh:
            role_vars.update(yaml.safe_load(fh) or {})
    while True:
        more = {k for k, v in role_vars.items() if isinstance(v, str) and k not in rendered
                and ("build_dir" in v or any(r in v for r in rendered))}
        if not more:
            break
        rendered |= more
    assert {"_ocs_frr_conf_src", "_ocs_dhcp_src"} <= rendered
    tagged = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml")):
        with open(path) as fh:
            for task in yaml.safe_load(fh) or []:
                if change.SETUP_TAG in task.get("tags", []):
                    tagged.setdefault(path.split(os.sep)[-3], []).append(task["name"])
                    text = yaml.safe_dump(task)
                    assert not [r for r in rendered if r in text], (path, task["name"])
    # the roles' own apt tasks (skipped after site.yml's package play)
    assert set(tagged) == {"ocs_dhcp", "ocs_firewall", "ocs_frr", "ocs_nat"}
    assert "Install the FRR daemons file" not in tagged["ocs_frr"]  # rendered (build dir): not setup
    # Setup inside a task that also carries rendered files (the units a role brings up, the agent's
    # programs, the routing sysctls): left alone when the run skips ocs_setup, by each item's flag.
    for role, needle in (("ocs_agent", "_ocs_agent_setup"), ("ocs_agent", "_ocs_agent_units_managed"),
                         ("ocs_frr", "'ocs_setup' not in ansible_skip_tags"),
                         ("ocs_dhcp", "'ocs_setup' not in ansible_skip_tags"),
                         ("ocs_routes", "'ocs_setup' not in ansible_skip_tags")):
        with open(os.path.join(ROOT, "roles", role, "tasks", "main.yml")) as fh:
            assert needle in fh.read(), (role, needle)
    with open(os.path.join(ROOT, "roles", "ocs_agent", "vars", "main.yml")) as fh:
        agent_vars = yaml.safe_load(fh)
    assert agent_vars["_ocs_agent_setup"] == "{{ 'ocs_setup' not in ansible_skip_tags }}"
    assert "_ocs_agent_setup" in agent_vars["_ocs_agent_units_managed"]
    cmd = change.command(["NEW"], {"hosts": ["h"], "roles": ["ocs_frr"], "by_role": {"ocs_frr": ["h"]}}, setup=True)
    assert cmd[-4:-2] == ["--tags", "ocs_frr"] and "--skip-tags" not in cmd


def test_new_must_be_a_path_and_overlays_go_on_paths(example):
    with pytest.raises(change.planner.PlanError):
        change.sources("HEAD:inventory", ["/tmp"])
    out, err = io.StringIO(), io.StringIO()
    rc = change.main(["OLD", "HEAD:inventory"], out, err, load=lambda spec: example, run=None)
    assert rc == 1 and "NEW is the inventory ansible-playbook reads" in err.getvalue()
