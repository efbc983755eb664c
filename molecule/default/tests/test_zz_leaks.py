"""Runs last (file order): after all the traffic above, no packet with an
internal source reached the internet (ext's OCS-LEAK chain, prepare.yml)."""

import fabric
from fabric import EXT, json_of, run


def test_no_internal_source_reached_ext():
    res = run(EXT, "iptables -t raw -L OCS-LEAK -n -v -x")
    assert res.rc == 0, res.stderr
    drops = [line.split() for line in res.stdout.splitlines() if " DROP " in " %s " % line]
    assert len(drops) == len(fabric.INTERNAL), res.stdout
    assert all(d[0] == "0" for d in drops), "packets with internal sources reached ext:\n" + res.stdout


def test_ext_routes_only_public_ranges():
    """ext, the internet, has no route into the internal ranges (besides its links)."""
    routes = [r["dst"] for r in json_of(EXT, "ip -4 -j route show")]
    links = [link["net"] for link in fabric.EXT_VARS["ocs_test_ext_links"]]
    bad = [d for d in routes if d not in links and d != "default"
           and any(fabric.covered(d.split("/")[0], [str(n)]) for n in fabric.INTERNAL)]
    assert not bad and "default" not in routes, routes
