#!/usr/bin/env python3
"""Generate a synthetic ocs-l3 fabric as an inventory directory.

    tools/gen_fabric.py OUT_DIR --racks 500 --hypervisors 20 --instances 50 --floating-share 0.2 --seed 1

Writes, deterministically from the arguments (same arguments, same bytes)::

    OUT_DIR/hosts.yml                 groups spines, tors, hypervisors, nat_gateways
    OUT_DIR/zz-racks.yml              ocs.l3.racks plugin: rack_<id> groups from ocs_rack
    OUT_DIR/group_vars/all/fabric.yml ocs_racks, ocs_fabric (instances_file: instances.json)
    OUT_DIR/host_vars/<host>.yml      one per host (address, rack, links, public address)
    OUT_DIR/instances.json            every instance, one record per line

Instances go to ONE file, never host_vars: Ansible spends ~5 us per variable
value it loads, the render plugin parses the file itself.

Address plan (``plan()``):

* hosts: 198.18.0.0/16. 198.18.0.0/24 spines, NAT gateways, border peer;
  one host block per rack from 198.18.1.0 (ToR .1, hypervisors .2 ...);
  spine-ToR point-to-point /31 links from 198.18.128.0/17.
* instances: one block per rack (a power of two holding network, gateway,
  broadcast and every instance of the rack) from 198.19.0.0/17 while it fits
  (up to 32,768 addresses: e.g. 10 racks x 1,000 instances); otherwise from
  10.0.0.0/8. 10.0.0.0/8 is then DATA ONLY: the scale benchmark renders and
  applies routes for it but never sends a packet.
* floating IPs and hypervisor/gateway public addresses: 203.0.113.0/24,
  198.51.100.0/24, 192.0.2.0/24, then 198.19.128.0/17 (or all of 198.19.0.0/16
  when instances moved to 10/8), then 100.64.0.0/10 only when still short
  (data only, as above).
* management (the host policy's management_ranges): 172.16.0.0/24, outside
  every pool.

The default size (2 racks x 4 hypervisors x 10 instances) stays within
198.18.0.0/15 and the documentation ranges.
"""

import argparse
import json
import os
import random
import shutil
import sys

HOST_RANGE = (0xC6120000, 16)  # 198.18.0.0/16
LINK_BASE = 0xC6128000  # 198.18.128.0/17: spine-ToR /31 links
BORDER_LINK = {"interface": "border0", "peer": "198.18.0.254"}  # every spine's (and gateway's, gateway mode) border link
INST_SMALL = (0xC6130000, 17)  # 198.19.0.0/17
INST_LARGE = (0x0A000000, 8)  # 10.0.0.0/8 (data only)
DOC_NETS = [(0xCB007100, 24), (0xC6336400, 24), (0xC0000200, 24)]  # 203.0.113/24, 198.51.100/24, 192.0.2/24
FLOAT_SMALL = DOC_NETS + [(0xC6138000, 17), (0x64400000, 10)]  # + 198.19.128.0/17, 100.64.0.0/10
FLOAT_LARGE = DOC_NETS + [(0xC6130000, 16), (0x64400000, 10)]  # + 198.19.0.0/16, 100.64.0.0/10
# Outside every pool above: 192.0.2.0/24 (the example's) is a floating range from 509 public addresses on.
MANAGEMENT = (0xAC100000, 24)  # 172.16.0.0/24

SPINE_ASN, HV_ASN, GW_ASN, BORDER_ASN = 65000, 65200, 65300, 65530
DUAL_STACK_DOC = """--dual-stack: internal_ranges6 2001:db8::/32; rack N (1-based) instance_subnets6
2001:db8:0:N::/64 (hex) with instance_ip6_from_ip4 (every instance's ip6 derived from its IPv4
address); spine S ocs_address6 2001:db8:ffff::S, ToR N 2001:db8:fffe::N (hex); the border peer's
address6 2001:db8:ff::fe on every spine's border link (address6 2001:db8:ff::S/64 there)."""
RACK_ASN_BASE = 4200000001  # private 4-byte ASNs, one per rack


def ntoa(ip):
    return "%d.%d.%d.%d" % (ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255)


def cidr(net):
    return "%s/%d" % (ntoa(net[0]), net[1])


def _block(need, minimum=4):
    """Smallest power of two >= need (and >= minimum)."""
    size = minimum
    while size < need:
        size *= 2
    return size


def _plen(size):
    return 32 - (size.bit_length() - 1)


class Plan:
    """Where every address of a generated fabric comes from."""

    def __init__(self, racks, hypervisors, instances, floating, spines, gateways, nat_mode):
        self.racks, self.hypervisors, self.instances = racks, hypervisors, instances
        self.spines, self.gateways = spines, gateways
        self.total = racks * hypervisors * instances
        self.floating = floating  # number of instances with a floating IP
        self.host_block = _block(hypervisors + 2, 8)  # network, ToR, hypervisors, broadcast
        if 0xC6120100 + racks * self.host_block > LINK_BASE:
            raise ValueError("%d racks x %d hypervisors do not fit 198.18.1.0-198.18.127.255"
                             % (racks, hypervisors))
        if racks * spines * 2 > 1 << 15:
            raise ValueError("%d racks x %d spines: too many /31 links for 198.18.128.0/17" % (racks, spines))
        self.inst_block = _block(hypervisors * instances + 3)  # network, gateway, instances, broadcast
        if racks * self.inst_block <= 1 << (32 - INST_SMALL[1]):
            self.inst_range, pools = INST_SMALL, FLOAT_SMALL
        elif racks * self.inst_block <= 1 << 24:
            self.inst_range, pools = INST_LARGE, FLOAT_LARGE
        else:
            raise ValueError("%d instances per rack x %d racks exceed 10.0.0.0/8" % (hypervisors * instances, racks))
        public = gateways + (racks * hypervisors if nat_mode == "host" else 0)
        self.public_needed = public + floating
        self.floating_ranges, have = [], 0
        for net in pools:
            if have >= self.public_needed and self.floating_ranges:
                break
            self.floating_ranges.append(net)
            have += (1 << (32 - net[1])) - 2
        if have < self.public_needed:
            raise ValueError("%d public addresses needed, the floating pools hold %d" % (self.public_needed, have))
        self.internal_ranges = [HOST_RANGE, self.inst_range]

    @property
    def data_only(self):
        """Ranges outside 198.18.0.0/15 and the documentation ranges (never carry traffic)."""
        return [cidr(n) for n in [self.inst_range] + self.floating_ranges
                if n in (INST_LARGE, (0x64400000, 10))]

    def public_addresses(self):
        """Usable addresses of the floating ranges, in order (network/broadcast skipped)."""
        for base, plen in self.floating_ranges:
            for ip in range(base + 1, base + (1 << (32 - plen)) - 1):
                yield ip


def _yaml_doc(lines):
    return "---\n" + "\n".join(lines) + "\n"


def _link(d):
    return "{" + ", ".join("%s: %s" % (k, v) for k, v in d.items()) + "}"


def generate(out, racks=2, hypervisors=4, instances=10, floating_share=0.2, seed=1, spines=2, gateways=2,
             nat_mode="host", routing_mode="bgp", force=False, dual_stack=False):
    """Write the inventory directory ``out``; return a summary dict. ``dual_stack``: IPv6 too
    (DUAL_STACK_DOC)."""
    total = racks * hypervisors * instances
    rng = random.Random(seed)
    n_float = int(round(total * floating_share))
    with_fip = set(rng.sample(range(total), n_float)) if 0 < n_float < total else (
        set(range(total)) if n_float else set())
    plan = Plan(racks, hypervisors, instances, n_float, spines, gateways, nat_mode)
    if os.path.exists(out):
        if not force and os.listdir(out):
            raise FileExistsError("%s exists and is not empty (use --force)" % out)
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "group_vars", "all"))
    os.makedirs(os.path.join(out, "host_vars"))
    public = plan.public_addresses()
    rw = max(2, len(str(racks)))
    hw = max(2, len(str(hypervisors)))
    rid = ["r%0*d" % (rw, r + 1) for r in range(racks)]
    spine_names = ["spine%d" % (s + 1) for s in range(spines)]
    gw_names = ["gw-%02d" % (g + 1) for g in range(gateways)]
    tor_names = ["tor-%s" % r for r in rid]
    hv_names = [["hv-%s-%0*d" % (r, hw, h + 1) for h in range(hypervisors)] for r in rid]
    host_vars = {}

    def spine_addr(s):
        return 0xC6120001 + s

    for s, name in enumerate(spine_names):
        downs = []
        for t in range(racks):
            ip = LINK_BASE + 2 * (t * spines + s)
            downs.append("  - " + _link({"interface": "swp%d" % (t + 1), "address": "%s/31" % ntoa(ip)}))
        # The border link is a link of its own (ingress anti-spoofing filters it); eth0 is the
        # spine layer's /24 toward the NAT gateways.
        downs.append("  - " + _link({"interface": "eth0", "address": "%s/24" % ntoa(spine_addr(s))}))
        border = dict(BORDER_LINK, address6="2001:db8:ff::%x/64" % (s + 1)) if dual_stack else BORDER_LINK
        host_vars[name] = ["ocs_address: %s" % ntoa(spine_addr(s)), "ocs_uplinks:",
                           "  - " + _link(border), "ocs_downlinks:"] + downs
        host_vars[name] += ["ocs_address6: 2001:db8:ffff::%x" % (s + 1)] if dual_stack else []
    for g, name in enumerate(gw_names):
        ip = 0xC6120015 + g  # 198.18.0.21 ...
        host_vars[name] = ["ocs_address: %s" % ntoa(ip), "ocs_public_address: %s" % ntoa(next(public)),
                           "ocs_uplinks:", "  - " + _link({"interface": "eth0", "address": "%s/24" % ntoa(ip),
                                                           "peer": ntoa(spine_addr(g % spines))})]
        host_vars[name] += ["  - " + _link(BORDER_LINK)] if nat_mode == "gateway" else []
    rack_lines = []
    hbits = _plen(plan.host_block)
    ibits = _plen(plan.inst_block)
    for t, r in enumerate(rid):
        hbase = 0xC6120100 + t * plan.host_block
        ibase = plan.inst_range[0] + t * plan.inst_block
        rack_lines += ["  %s:" % r, "    asn: %d" % (RACK_ASN_BASE + t),
                       "    host_subnet: %s/%d" % (ntoa(hbase), hbits),
                       "    instance_subnets: [%s/%d]" % (ntoa(ibase), ibits)]
        if dual_stack:
            rack_lines += ["    instance_subnets6: ['2001:db8:0:%x::/64']" % (t + 1), "    instance_ip6_from_ip4: true"]
        tor = hbase + 1
        ups = []
        for s in range(spines):
            ip = LINK_BASE + 2 * (t * spines + s)
            ups.append("  - " + _link({"interface": "eth%d" % s, "address": "%s/31" % ntoa(ip + 1),
                                       "peer": ntoa(ip)}))
        host_vars[tor_names[t]] = ["ocs_address: %s" % ntoa(tor), "ocs_rack: %s" % r, "ocs_uplinks:"] + ups + [
            "ocs_downlinks:", "  - " + _link({"interface": "swp1", "address": "%s/%d" % (ntoa(tor), hbits)})]
        host_vars[tor_names[t]] += ["ocs_address6: 2001:db8:fffe::%x" % (t + 1)] if dual_stack else []
        for h, name in enumerate(hv_names[t]):
            ip = hbase + 2 + h
            lines = ["ocs_address: %s" % ntoa(ip), "ocs_rack: %s" % r, "ocs_uplinks:",
                     "  - " + _link({"interface": "eth0", "address": "%s/%d" % (ntoa(ip), hbits),
                                     "peer": ntoa(tor)})]
            if nat_mode == "host":
                lines.append("ocs_public_address: %s" % ntoa(next(public)))
            host_vars[name] = lines
    for name, lines in host_vars.items():
        with open(os.path.join(out, "host_vars", name + ".yml"), "w") as fh:
            fh.write(_yaml_doc(lines))

    with open(os.path.join(out, "instances.json"), "w") as fh:
        fh.write("[\n")
        idx = 0
        mac_hi = 0x02 << 40 | (seed & 0xFF) << 32
        for t, r in enumerate(rid):
            ibase = plan.inst_range[0] + t * plan.inst_block
            for h, hv in enumerate(hv_names[t]):
                for k in range(instances):
                    mac = mac_hi | idx
                    rec = {"hypervisor": hv, "name": "vm-%s-%0*d-%04d" % (r, hw, h + 1, k + 1),
                           "mac": ":".join("%02x" % ((mac >> s) & 255) for s in range(40, -8, -8)),
                           "ip": ntoa(ibase + 2 + h * instances + k)}
                    if idx in with_fip:
                        rec["floating_ip"] = ntoa(next(public))
                    fh.write((",\n" if idx else "") + json.dumps(rec, separators=(",", ":")))
                    idx += 1
        fh.write("\n]\n")

    def group(name, members):
        return ["    %s:" % name, "      hosts:"] + ["        %s:" % m for m in members]

    hosts = ["# Generated by tools/gen_fabric.py: %d racks x %d hypervisors x %d instances, seed %d"
             % (racks, hypervisors, instances, seed), "all:", "  children:"]
    hosts += group("spines", spine_names) + group("tors", tor_names)
    hosts += group("hypervisors", [n for row in hv_names for n in row])
    if gw_names:
        hosts += group("nat_gateways", gw_names)
    with open(os.path.join(out, "hosts.yml"), "w") as fh:
        fh.write(_yaml_doc(hosts))
    with open(os.path.join(out, "zz-racks.yml"), "w") as fh:
        fh.write(_yaml_doc(["# Rack groups rack_<id> from each host's ocs_rack (--limit rack_r001).",
                            "plugin: ocs.l3.racks"]))
    fabric = ["# Generated by tools/gen_fabric.py (seed %d)." % seed]
    if plan.data_only:
        fabric.append("# %s: data only, no packet is ever sent there (scale benchmark)." % ", ".join(plan.data_only))
    fabric += ["ocs_racks:"] + rack_lines + [
        "ocs_fabric:", "  spine_asn: %d" % SPINE_ASN, "  hypervisor_asn: %d" % HV_ASN,
        "  gateway_asn: %d" % GW_ASN, "  border_peers:", "    - {address: 198.18.0.254, asn: %d%s}"
        % (BORDER_ASN, ", address6: '2001:db8:ff::fe'" if dual_stack else ""),
        "  floating_ranges: [%s]" % ", ".join(cidr(n) for n in plan.floating_ranges),
        "  internal_ranges: [%s]" % ", ".join(cidr(n) for n in plan.internal_ranges),
        "  metadata: {ip: 169.254.169.254, port: 80, target: 198.18.0.100, target_port: 8775}",
        "  dns_servers: [198.18.0.53]", "  domain: cloud.ocs.example", "  mtu: 1450",
        "  management_ranges: [%s]" % cidr(MANAGEMENT),
        "  instance_ifname_prefix: tap", "  nat_mode: %s" % nat_mode, "  routing_mode: %s" % routing_mode,
        "  instances_file: instances.json"] + (["  internal_ranges6: ['2001:db8::/32']"] if dual_stack else [])
    with open(os.path.join(out, "group_vars", "all", "fabric.yml"), "w") as fh:
        fh.write(_yaml_doc(fabric))
    return {"dir": out, "racks": racks, "hypervisors": racks * hypervisors, "instances": total,
            "floating_ips": n_float, "hosts": len(host_vars), "internal_ranges": [cidr(n) for n in plan.internal_ranges],
            "floating_ranges": [cidr(n) for n in plan.floating_ranges], "data_only_ranges": plan.data_only}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="inventory directory to write")
    ap.add_argument("--racks", type=int, default=2)
    ap.add_argument("--hypervisors", type=int, default=4, help="hypervisors per rack")
    ap.add_argument("--instances", type=int, default=10, help="instances per hypervisor")
    ap.add_argument("--floating-share", type=float, default=0.2, help="share of instances with a floating IP")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--spines", type=int, default=2)
    ap.add_argument("--gateways", type=int, default=2, help="NAT gateways")
    ap.add_argument("--nat-mode", choices=("host", "gateway"), default="host")
    ap.add_argument("--routing-mode", choices=("bgp", "static"), default="bgp")
    ap.add_argument("--force", action="store_true", help="replace OUT if it exists")
    ap.add_argument("--dual-stack", action="store_true", help="IPv6 too: " + DUAL_STACK_DOC.split(":", 1)[1].strip())
    args = ap.parse_args(argv)
    if not 0 <= args.floating_share <= 1 or min(args.racks, args.hypervisors, args.spines) < 1 or args.instances < 0:
        ap.error("sizes must be positive and --floating-share within 0..1")
    if args.nat_mode == "gateway" and args.gateways < 1:
        ap.error("--nat-mode gateway needs --gateways >= 1")
    try:
        summary = generate(args.out, args.racks, args.hypervisors, args.instances, args.floating_share, args.seed,
                           args.spines, args.gateways, args.nat_mode, args.routing_mode, args.force, args.dual_stack)
    except (ValueError, FileExistsError) as exc:
        ap.error(str(exc))
    json.dump(summary, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
