"""Every validation rule, with the exact message it gives."""

import pytest

from fabric_data import dual_stack, gateway_mode, problems_of
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build, default_ifname


def hv(d, name):
    return d["hostvars"][name]


def inst(d, host, i):
    return d["hostvars"][host]["ocs_instances"][i]


def test_base_fabric_is_valid(data):
    fab = build(data)
    assert sorted(fab.racks) == ["r01", "r02"]
    assert fab.instance_count == 4
    assert [h.name for h in fab.racks["r01"].hypervisors] == ["hv-r01-01", "hv-r01-02"]
    assert fab.hosts["tor-r02"].asn == 65102
    assert fab.hosts["hv-r01-02"].uplinks[1].peer_host == "tor-r01"
    vm_a = fab.hosts["hv-r01-01"].instances[0]
    assert vm_a.interface == default_ifname("vm-a", "tap")
    assert fab.hosts["hv-r01-01"].instances[1].interface == "tap-b"


def test_default_ifname_is_short_and_stable():
    assert default_ifname("vm-a", "tap") == default_ifname("vm-a", "tap")
    assert len(default_ifname("x" * 63, "tap")) == 14
    assert len(default_ifname("x", "tapabcde")) == 15
    assert default_ifname("vm-a", "tap") != default_ifname("vm-b", "tap")


RULES = [
    # --- racks and ranges ---------------------------------------------------
    ("unknown rack", lambda d: hv(d, "hv-r02-01").update(ocs_rack="r09"),
     "hypervisors.hv-r02-01.ocs_rack r09 is not a rack of ocs_racks"),
    ("invalid CIDR", lambda d: d["racks"]["r01"].update(host_subnet="198.18.1.0/33"),
     "ocs_racks.r01.host_subnet 198.18.1.0/33 is not a network in CIDR notation (a.b.c.d/len)"),
    ("host bits", lambda d: d["racks"]["r01"].update(instance_subnets=["198.19.1.5/24"]),
     "ocs_racks.r01.instance_subnets[0] 198.19.1.5/24 has host bits set (the network is 198.19.1.0/24)"),
    ("racks overlap", lambda d: d["racks"]["r02"].update(instance_subnets=["198.19.1.128/25"]),
     "ocs_racks.r02.instance_subnets[0] 198.19.1.128/25 overlaps ocs_racks.r01.instance_subnets[0] 198.19.1.0/24"),
    ("host subnet overlaps instance subnet",
     lambda d: d["racks"]["r02"].update(host_subnet="198.19.1.0/26"),
     "ocs_racks.r02.host_subnet 198.19.1.0/26 overlaps ocs_racks.r01.instance_subnets[0] 198.19.1.0/24"),
    ("rack overlaps floating", lambda d: d["fabric"].update(floating_ranges=["198.19.2.0/24"]),
     "ocs_fabric.floating_ranges 198.19.2.0/24 overlaps internal range 198.18.0.0/15"),
    ("rack outside internal", lambda d: d["fabric"].update(internal_ranges=["198.18.0.0/16"]),
     "ocs_racks.r02.instance_subnets[1] 198.19.2.128/25 is not inside internal_ranges [198.18.0.0/16]"),
    ("default route as range", lambda d: d["fabric"].update(internal_ranges=["0.0.0.0/0"]),
     "ocs_fabric.internal_ranges[0] 0.0.0.0/0 covers every address (0.0.0.0/0 is not allowed)"),
    ("floating range overlapping itself",
     lambda d: d["fabric"].update(floating_ranges=["203.0.113.0/24", "203.0.113.128/25"]),
     "ocs_fabric.floating_ranges[1] 203.0.113.128/25 overlaps floating_ranges[0] 203.0.113.0/24"),
    ("subnet too small", lambda d: d["racks"]["r01"].update(instance_subnets=["198.19.1.0/31"]),
     "ocs_racks.r01.instance_subnets[0] 198.19.1.0/31 is smaller than a /30"),
    ("gateway outside", lambda d: d["racks"]["r01"].update(instance_gateway="198.19.9.1"),
     "ocs_racks.r01.instance_gateway 198.19.9.1 is outside the first instance subnet 198.19.1.0/24"),
    ("gateway broadcast", lambda d: d["racks"]["r01"].update(instance_gateway="198.19.1.255"),
     "ocs_racks.r01.instance_gateway 198.19.1.255 is the network or broadcast address of 198.19.1.0/24"),
    ("unknown rack field", lambda d: d["racks"]["r01"].update(instance_subnet="x"),
     "ocs_racks.r01.instance_subnet is not a known field (known: asn, host_subnet, instance_gateway, "
     "instance_subnets)"),
    ("unknown fabric field", lambda d: d["fabric"].update(flaoting_ranges=[]),
     "ocs_fabric.flaoting_ranges is not a known field (known: bgp, border, border_peers, conn_limit, "
     "dhcp_lease_time, dns_servers, domain, edge_mtu, "
     "floating_ranges, gateway_asn, host_policy, host_services, "
     "hypervisor_asn, instance_ifname_prefix, instance_services, instances_file, internal_ranges, "
     "management_ranges, metadata, monitoring_ranges, mtu, nat_mode, routing_mode, spine_asn)"),
    # The host policy (issue 14): named errors, nothing written.
    ("management ranges missing", lambda d: d["fabric"].pop("management_ranges"),
     "ocs_fabric.management_ranges is required while host_policy is on (the default): list the networks SSH "
     "and other management may come from (or set host_policy: false)"),
    ("management ranges empty", lambda d: d["fabric"].update(management_ranges=[]),
     "ocs_fabric.management_ranges is empty: every host would be closed to its own management"),
    ("management range over instances", lambda d: d["fabric"].update(management_ranges=["198.19.0.0/16"]),
     "ocs_fabric.management_ranges[0] 198.19.0.0/16 overlaps rack r01 instance subnet 198.19.1.0/24 "
     "(tenants would be management)"),
    ("management range over floating", lambda d: d["fabric"].update(management_ranges=["203.0.113.128/25"]),
     "ocs_fabric.management_ranges[0] 203.0.113.128/25 overlaps floating range 203.0.113.0/24 "
     "(tenants would be management)"),
    ("management range malformed", lambda d: d["fabric"].update(management_ranges=["192.0.2.1/24"]),
     "ocs_fabric.management_ranges[0] 192.0.2.1/24 has host bits set (the network is 192.0.2.0/24)"),
    ("management range v6 malformed", lambda d: d["fabric"].update(management_ranges=["2001:db8::1/64"]),
     "ocs_fabric.management_ranges[0] 2001:db8::1/64 is not an IPv6 network in CIDR notation "
     "(2001:db8::1/64 has host bits set)"),
    ("host_policy not a bool", lambda d: d["fabric"].update(host_policy="yes"),
     "ocs_fabric.host_policy yes must be true or false"),
    ("host service not a mapping", lambda d: d["fabric"].update(host_services=["tcp/9100"]),
     "ocs_fabric.host_services[0] must be a mapping {proto, port, from, roles}, got tcp/9100"),
    ("host service bad proto", lambda d: d["fabric"].update(host_services=[{"proto": "sctp", "port": 9100,
                                                                            "from": ["192.0.2.0/24"]}]),
     "ocs_fabric.host_services[0].proto sctp must be tcp or udp"),
    ("host service bad port", lambda d: d["fabric"].update(host_services=[{"proto": "tcp", "port": 70000,
                                                                           "from": ["192.0.2.0/24"]}]),
     "ocs_fabric.host_services[0].port 70000 is not a port (1-65535)"),
    ("host service without sources", lambda d: d["fabric"].update(host_services=[{"proto": "tcp", "port": 9100}]),
     "ocs_fabric.host_services[0].from is required"),
    ("host service unknown key", lambda d: d["fabric"].update(host_services=[{"proto": "tcp", "port": 9100,
                                                                              "from": ["192.0.2.0/24"], "to": 1}]),
     "ocs_fabric.host_services[0].to is not a known field (known: from, port, proto, roles)"),
    ("host service bad role", lambda d: d["fabric"].update(host_services=[{"proto": "udp", "port": 123,
                                                                           "from": ["192.0.2.0/24"],
                                                                           "roles": ["router"]}]),
     "ocs_fabric.host_services[0].roles ['router'] must be a non-empty list of hypervisor, nat_gateway, spine, tor"),
    ("instance service bad address", lambda d: d["fabric"].update(instance_services=[{"address": "198.18.0.300",
                                                                                      "proto": "tcp", "port": 8080}]),
     "ocs_fabric.instance_services[0].address 198.18.0.300 is not an IPv4 address"),
    ("instance service not a list", lambda d: d["fabric"].update(instance_services={"address": "198.18.0.9"}),
     "ocs_fabric.instance_services must be a list of {address, proto, port}, got {'address': '198.18.0.9'}"),
    ("bad nat mode", lambda d: d["fabric"].update(nat_mode="dvr"),
     "ocs_fabric.nat_mode dvr must be host or gateway"),
    ("bad mtu", lambda d: d["fabric"].update(mtu=100000),
     "ocs_fabric.mtu 100000 must be an integer from 576 to 9216"),
    ("bad edge_mtu", lambda d: d["fabric"].update(edge_mtu=0),
     "ocs_fabric.edge_mtu 0 must be an integer from 576 to 9216"),
    ("DHCP lease too short", lambda d: d["fabric"].update(dhcp_lease_time="1m"),
     "ocs_fabric.dhcp_lease_time 1m must be a lease time from 2m to 365d (seconds, or a number with unit s, m, h, "
     "d or w)"),
    ("DHCP lease not a duration", lambda d: d["fabric"].update(dhcp_lease_time="infinite"),
     "ocs_fabric.dhcp_lease_time infinite must be a lease time from 2m to 365d (seconds, or a number with unit s, "
     "m, h, d or w)"),
    ("bad domain", lambda d: d["fabric"].update(domain="a b"),
     "ocs_fabric.domain 'a b' is not a lower-case DNS domain name"),
    ("bad metadata port", lambda d: d["fabric"]["metadata"].update(port=0),
     "ocs_fabric.metadata.port 0 is not a TCP port"),
    ("bad prefix", lambda d: d["fabric"].update(instance_ifname_prefix="Tap"),
     "ocs_fabric.instance_ifname_prefix Tap must be 1-8 characters of a-z, 0-9 and '-', starting with a letter"),
    # --- ASNs ---------------------------------------------------------------
    ("rack ASNs unique", lambda d: d["racks"]["r02"].update(asn=65101),
     "ocs_racks.r02.asn 65101 is also the ASN of rack r01"),
    ("rack ASN equals spine", lambda d: d["racks"]["r02"].update(asn=65000),
     "ocs_racks.r02.asn 65000 is also ocs_fabric.spine_asn"),
    ("hypervisor ASN equals spine", lambda d: d["fabric"].update(hypervisor_asn=65000),
     "ocs_fabric.hypervisor_asn 65000 is also spine_asn"),
    ("reserved ASN", lambda d: d["fabric"].update(gateway_asn=23456),
     "ocs_fabric.gateway_asn 23456 is a reserved AS number"),
    ("ASN zero", lambda d: d["racks"]["r01"].update(asn=0), "ocs_racks.r01.asn 0 is a reserved AS number"),
    ("ASN 65535", lambda d: d["fabric"].update(spine_asn=65535), "ocs_fabric.spine_asn 65535 is a reserved AS number"),
    ("ASN 2^32-1", lambda d: d["fabric"].update(spine_asn=4294967295),
     "ocs_fabric.spine_asn 4294967295 is a reserved AS number"),
    ("documentation ASN", lambda d: d["racks"]["r01"].update(asn=64500),
     "ocs_racks.r01.asn 64500 is a documentation AS number (RFC 5398)"),
    ("documentation ASN 32-bit", lambda d: d["fabric"]["border_peers"][0].update(asn=65540),
     "ocs_fabric.border_peers[0].asn 65540 is a documentation AS number (RFC 5398)"),
    ("spines share spine_asn", lambda d: hv(d, "spine1").update(ocs_asn=65001),
     "spines.spine1.ocs_asn 65001 differs from ocs_fabric.spine_asn 65000 (spines share one ASN)"),
    ("ASN not a number", lambda d: d["racks"]["r01"].update(asn="65101x"),
     "ocs_racks.r01.asn 65101x is not an AS number (an integer)"),
    # --- hosts --------------------------------------------------------------
    ("host outside host subnet", lambda d: hv(d, "hv-r02-01").update(ocs_address="198.18.1.99"),
     "hypervisors.hv-r02-01.ocs_address 198.18.1.99 is outside rack r02 host_subnet 198.18.2.0/24"),
    ("host address duplicated", lambda d: hv(d, "hv-r01-02").update(ocs_address="198.18.1.11"),
     "hypervisors.hv-r01-02.ocs_address 198.18.1.11 is also the address of hypervisors.hv-r01-01"),
    ("host address invalid", lambda d: hv(d, "spine1").update(ocs_address="198.18.0.1\n"),
     "spines.spine1.ocs_address '198.18.0.1\\n' is not an IPv4 address"),
    ("host address missing", lambda d: hv(d, "spine1").pop("ocs_address"), "spines.spine1.ocs_address is required"),
    ("rack missing", lambda d: hv(d, "tor-r02").pop("ocs_rack"), "tors.tor-r02.ocs_rack is required"),
    ("host in two groups", lambda d: d["groups"]["tors"].append("hv-r02-01"),
     "hypervisors.hv-r02-01 is also in group tors (a host has one role)"),
    ("public address outside floating", lambda d: hv(d, "gw-01").update(ocs_public_address="198.18.0.99"),
     "nat_gateways.gw-01.ocs_public_address 198.18.0.99 is outside floating_ranges"),
    ("public address required", lambda d: hv(d, "hv-r02-01").pop("ocs_public_address"),
     "hypervisors.hv-r02-01.ocs_public_address is required (hypervisor with nat_mode host)"),
    ("public address duplicated", lambda d: hv(d, "hv-r01-02").update(ocs_public_address="203.0.113.11"),
     "hypervisors.hv-r01-02.ocs_public_address 203.0.113.11 is also the public address of hypervisors.hv-r01-01"),
    ("uplink name invalid", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(interface="eth0;reboot"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].interface 'eth0;reboot' is not a valid interface name"),
    ("uplink name too long", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(interface="a" * 16),
     "hypervisors.hv-r01-01.ocs_uplinks[0].interface aaaaaaaaaaaaaaaa is not a valid interface name"),
    ("uplink with instance prefix", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(interface="tap0"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].interface tap0 starts with the instance interface prefix tap"),
    ("uplink peer not a ToR", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(peer="198.18.1.12"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].peer 198.18.1.12 is not an address of a ToR"),
    ("uplink peer off link", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(peer="198.18.1.129"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].peer 198.18.1.129 is not another address of the link 198.18.1.0/25"),
    ("uplink address duplicated", lambda d: hv(d, "hv-r01-02")["ocs_uplinks"][1].update(address="198.18.1.11/25"),
     "hypervisors.hv-r01-02.ocs_uplinks[1].address 198.18.1.11 is also an address of hv-r01-01"),
    ("uplink address is network", lambda d: hv(d, "hv-r01-01")["ocs_uplinks"][0].update(address="198.18.1.0/25"),
     "hypervisors.hv-r01-01.ocs_uplinks[0].address 198.18.1.0/25 is the network or broadcast address of "
     "198.18.1.0/25"),
    ("ToR uplink peer not a spine", lambda d: hv(d, "tor-r02")["ocs_uplinks"][0].update(peer="198.18.0.21"),
     "tors.tor-r02.ocs_uplinks[0].peer 198.18.0.21 is not an address of a spine"),
    ("rackless host inside a rack", lambda d: hv(d, "gw-01").update(ocs_address="198.18.2.200"),
     "nat_gateways.gw-01.ocs_address 198.18.2.200 lies in rack r02, but gw-01 has no ocs_rack"),
    ("rack with hypervisors and no ToR", lambda d: d["groups"]["tors"].remove("tor-r02"),
     "ocs_racks.r02 has hypervisors but no ToR in group tors"),
    ("gateway mode without gateways", lambda d: (d["fabric"].update(nat_mode="gateway"),
                                                 d["groups"].update(nat_gateways=[])),
     "ocs_fabric.nat_mode is gateway, but group nat_gateways is empty"),
    # --- injection attempts and duplicates (issue 9 corpus) -----------------
    ("floating IP as a network", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="0.0.0.0/0"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 0.0.0.0/0 is not an IPv4 address"),
    ("fabric range as floating range", lambda d: d["fabric"].update(floating_ranges=["198.18.0.0/15"]),
     "ocs_fabric.floating_ranges 198.18.0.0/15 overlaps internal range 198.18.0.0/15"),
    ("MAC with newline", lambda d: inst(d, "hv-r01-02", 0).update(mac="02:00:00:00:01:0c\ndhcp-range=x"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac '02:00:00:00:01:0c\\ndhcp-range=x' is not a MAC address "
     "of six colon-separated hex octets"),
    ("MAC too long", lambda d: inst(d, "hv-r01-02", 0).update(mac="02:00:00:00:01:0c:0d"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac 02:00:00:00:01:0c:0d is not a MAC address of six "
     "colon-separated hex octets"),
    ("IP with trailing newline", lambda d: inst(d, "hv-r01-02", 0).update(ip="198.19.1.12\n"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip '198.19.1.12\\n' is not an IPv4 address"),
    ("IP with leading zero", lambda d: inst(d, "hv-r01-02", 0).update(ip="198.19.1.012"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip 198.19.1.012 is not an IPv4 address"),
    ("domain with newline", lambda d: d["fabric"].update(domain="ocs.example\nserver=/x/1.2.3.4"),
     "ocs_fabric.domain 'ocs.example\\nserver=/x/1.2.3.4' is not a lower-case DNS domain name"),
    ("DNS server not an address", lambda d: d["fabric"].update(dns_servers=["198.18.0.53,8.8.8.8"]),
     "ocs_fabric.dns_servers[0] '198.18.0.53,8.8.8.8' is not an IPv4 address"),
    ("metadata target not an address", lambda d: d["fabric"]["metadata"].update(target="$(id)"),
     "ocs_fabric.metadata.target '$(id)' is not an IPv4 address"),
    ("host name with shell word", lambda d: (d["groups"]["spines"].append("sp;reboot"),
                                             d["hostvars"].update({"sp;reboot": {"ocs_address": "198.18.0.2"}})),
     "spines.sp;reboot host name must be 1-63 characters of letters, digits, '.', '-' and '_'"),
    ("rack id with space", lambda d: d["racks"].update({"r 3": {"asn": 65103}}),
     "ocs_racks.'r 3' rack id must be 1-32 characters of a-z, 0-9, '-' and '_'"),
    ("border peer twice", lambda d: d["fabric"]["border_peers"].append({"address": "198.18.0.254", "asn": 65531}),
     "ocs_fabric.border_peers[1].address 198.18.0.254 is listed twice"),
    ("uplink interface twice", lambda d: hv(d, "hv-r01-02")["ocs_uplinks"][1].update(interface="eth0"),
     "hypervisors.hv-r01-02.ocs_uplinks[1].interface eth0 is listed twice"),
    ("downlink address of another host", lambda d: hv(d, "tor-r01")["ocs_downlinks"][1].update(
        address="198.18.1.12/25"),
     "tors.tor-r01.ocs_downlinks[1].address 198.18.1.12 is also an address of hv-r01-02"),
    # --- instances ----------------------------------------------------------
    ("instance outside rack", lambda d: inst(d, "hv-r01-02", 0).update(ip="198.19.2.7"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip 198.19.2.7 is outside rack r01 instance_subnets "
     "[198.19.1.0/24]"),
    ("instance network address", lambda d: inst(d, "hv-r01-02", 0).update(ip="198.19.1.0"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip 198.19.1.0 is the network or broadcast address of "
     "198.19.1.0/24"),
    ("instance broadcast", lambda d: inst(d, "hv-r02-01", 0).update(ip="198.19.2.127"),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip 198.19.2.127 is the network or broadcast address of "
     "198.19.2.0/25"),
    ("instance gateway", lambda d: inst(d, "hv-r02-01", 0).update(ip="198.19.2.129"),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip 198.19.2.129 is the gateway of 198.19.2.128/25 in rack r02"),
    ("instance IP duplicated", lambda d: inst(d, "hv-r01-02", 0).update(ip="198.19.1.10"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip 198.19.1.10 is also the IP of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a)"),
    ("MAC malformed", lambda d: inst(d, "hv-r01-02", 0).update(mac="02:00:00:00:01"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac 02:00:00:00:01 is not a MAC address of six "
     "colon-separated hex octets"),
    ("MAC multicast", lambda d: inst(d, "hv-r01-02", 0).update(mac="01:00:5e:00:00:01"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac 01:00:5e:00:00:01 is a multicast or broadcast MAC address"),
    ("MAC broadcast", lambda d: inst(d, "hv-r01-02", 0).update(mac="ff:ff:ff:ff:ff:ff"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac ff:ff:ff:ff:ff:ff is a multicast or broadcast MAC address"),
    ("MAC duplicated (any case)", lambda d: inst(d, "hv-r01-02", 0).update(mac="02:00:00:00:01:0A"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).mac 02:00:00:00:01:0a is also the MAC of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a)"),
    ("name not a label", lambda d: inst(d, "hv-r01-02", 0).update(name="vm_c"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm_c).name vm_c is not a lower-case RFC 1123 label (a-z, 0-9, '-', "
     "at most 63)"),
    ("name duplicated", lambda d: inst(d, "hv-r01-02", 0).update(name="vm-a"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-a).name vm-a is also the name of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a)"),
    ("floating outside ranges", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="198.51.100.7"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 198.51.100.7 is outside floating_ranges "
     "[203.0.113.0/24]"),
    ("floating is a fixed IP", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="198.19.1.10"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 198.19.1.10 is outside floating_ranges "
     "[203.0.113.0/24]"),
    ("floating duplicated", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="203.0.113.101"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 203.0.113.101 is also the floating IP of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a)"),
    ("floating equals public", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="203.0.113.250"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 203.0.113.250 is also the public address of "
     "nat_gateways.gw-01"),
    ("floating is broadcast", lambda d: inst(d, "hv-r01-02", 0).update(floating_ip="203.0.113.255"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating_ip 203.0.113.255 is the network or broadcast address "
     "of floating range 203.0.113.0/24"),
    ("interface outside prefix", lambda d: inst(d, "hv-r01-01", 1).update(interface="eth9"),
     "hypervisors.hv-r01-01.ocs_instances[1] (vm-b).interface eth9 must be a valid interface name (<= 15 chars) "
     "starting with tap"),
    ("interface clash", lambda d: inst(d, "hv-r01-01", 0).update(interface="tap-b"),
     "hypervisors.hv-r01-01.ocs_instances[1] (vm-b).interface tap-b is also the interface of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a) on hv-r01-01"),
    ("interface injection", lambda d: inst(d, "hv-r01-01", 1).update(interface="tap-b\nroute"),
     "hypervisors.hv-r01-01.ocs_instances[1] (vm-b).interface 'tap-b\\nroute' must be a valid interface name "
     "(<= 15 chars) starting with tap"),
    ("unknown instance field", lambda d: inst(d, "hv-r01-02", 0).update(floating="203.0.113.9"),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).floating is not a known field (known: conn_limit, floating_ip, "
     "interface, ip, mac, name)"),
    # --- tenant limits (issue 18): the cap on an instance's tracked connections ----------------
    ("conn limit zero", lambda d: inst(d, "hv-r01-02", 0).update(conn_limit=0),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).conn_limit 0 must be an integer from 1 to 1048576 "
     "(tracked connections per instance)"),
    ("conn limit negative", lambda d: d["fabric"].update(conn_limit=-5),
     "ocs_fabric.conn_limit -5 must be an integer from 1 to 1048576 (tracked connections per instance)"),
    ("conn limit not an integer", lambda d: inst(d, "hv-r01-01", 1).update(conn_limit=2.5),
     "hypervisors.hv-r01-01.ocs_instances[1] (vm-b).conn_limit 2.5 must be an integer from 1 to 1048576 "
     "(tracked connections per instance)"),
    ("conn limit a word", lambda d: d["fabric"].update(conn_limit="many"),
     "ocs_fabric.conn_limit many must be an integer from 1 to 1048576 (tracked connections per instance)"),
    ("conn limit a boolean", lambda d: inst(d, "hv-r01-02", 0).update(conn_limit=True),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).conn_limit True must be an integer from 1 to 1048576 "
     "(tracked connections per instance)"),
    ("conn limit too large", lambda d: d["fabric"].update(conn_limit=2 ** 21),
     "ocs_fabric.conn_limit 2097152 must be an integer from 1 to 1048576 (tracked connections per instance)"),
    # --- BGP unnumbered (FRR) -------------------------------------------------
    ("unnumbered hypervisor uplink without ToR downlink",
     lambda d: hv(d, "hv-r01-01").update(ocs_uplinks=[{"interface": "eth0"}]),
     "hypervisors.hv-r01-01.ocs_uplinks[0].peer is not set (BGP unnumbered), but no ToR of rack r01 has an "
     "ocs_downlinks entry with host hv-r01-01"),
    ("unnumbered ToR uplink without spine downlink",
     lambda d: hv(d, "tor-r02").update(ocs_uplinks=[{"interface": "eth0"}]),
     "tors.tor-r02.ocs_uplinks[0].peer is not set (BGP unnumbered), but no spine has an ocs_downlinks entry "
     "with host tor-r02"),
    ("gateway mode without internal ranges",
     lambda d: (gateway_mode(d), d["fabric"].update(internal_ranges=[])),
     "ocs_fabric.internal_ranges is empty, but nat_mode gateway needs it (the NAT gateways tell east-west from "
     "outbound traffic by it)"),
    # The edge (issue 15): border links, where ingress anti-spoofing filters.
    ("spine without border link", lambda d: hv(d, "spine1").pop("ocs_uplinks"),
     "spines.spine1.ocs_uplinks has no uplink to a border peer (ocs_fabric.border_peers): with nat_mode host spine1 "
     "is the edge, and its border links are where ingress anti-spoofing filters"),
    ("gateway without border link in gateway mode",
     lambda d: (gateway_mode(d), hv(d, "gw-01")["ocs_uplinks"].pop()),
     "nat_gateways.gw-01.ocs_uplinks has no uplink to a border peer (ocs_fabric.border_peers): with nat_mode gateway "
     "gw-01 is the edge, and its border links are where ingress anti-spoofing filters"),
    ("border link shared with the fabric",
     lambda d: hv(d, "spine1")["ocs_uplinks"][0].update(interface="eth0", address="198.18.0.1/24"),
     "spines.spine1.ocs_uplinks[0].address border link 198.18.0.0/24 is shared with tor-r01 (198.18.0.11): the edge "
     "filter on eth0 would drop the fabric's traffic on it; give the border a link of its own"),
    # --- IPv6 (dual stack: fabric_data.dual_stack; validated, not yet rendered) --------------
    ("ip6 outside its rack", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:1::d")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 2001:db8:0:1::d is outside rack r02 instance_subnets6 "
     "[2001:db8:0:2::/64]"),
    ("ip6 duplicated", lambda d: (dual_stack(d), inst(d, "hv-r01-02", 0).update(ip6="2001:db8:0:1::b")),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip6 2001:db8:0:1::b is also the ip6 of "
     "hypervisors.hv-r01-01.ocs_instances[1] (vm-b)"),
    ("ip6 duplicates a derived one",
     lambda d: (dual_stack(d), inst(d, "hv-r01-02", 0).update(ip6="2001:DB8:0:1::C613:10A")),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip6 2001:db8:0:1::c613:10a is also the ip6 of "
     "hypervisors.hv-r01-01.ocs_instances[0] (vm-a)"),
    ("derived ip6 duplicates a given one",
     lambda d: (dual_stack(d), inst(d, "hv-r01-01", 1).update(ip6="2001:db8:0:1::c613:10c")),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip6 2001:db8:0:1::c613:10c (derived from ip 198.19.1.12) is "
     "also the ip6 of hypervisors.hv-r01-01.ocs_instances[1] (vm-b)"),
    ("ip6 is a host's ocs_address6",
     lambda d: (dual_stack(d), hv(d, "hv-r01-01").update(ocs_address6="2001:db8:0:1::99"),
                inst(d, "hv-r01-02", 0).update(ip6="2001:db8:0:1::99")),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ip6 2001:db8:0:1::99 is also the ocs_address6 of host "
     "hv-r01-01"),
    ("ocs_address6 in an instance subnet", lambda d: (dual_stack(d), hv(d, "hv-r01-01").update(
        ocs_address6="2001:db8:0:1::99")),
     "hypervisors.hv-r01-01.ocs_address6 2001:db8:0:1::99 lies in rack r01 instance_subnets6 2001:db8:0:1::/64 "
     "(instance addresses)"),
    ("ocs_address6 duplicated", lambda d: (dual_stack(d), hv(d, "tor-r01").update(ocs_address6="2001:db8:ffff::1")),
     "tors.tor-r01.ocs_address6 2001:db8:ffff::1 is also the ocs_address6 of spines.spine1"),
    ("ocs_address6 outside internal_ranges6",
     lambda d: (dual_stack(d), hv(d, "spine1").update(ocs_address6="2001:db9::1")),
     "spines.spine1.ocs_address6 2001:db9::1 is not inside internal_ranges6"),
    ("ocs_address6 link-local", lambda d: (dual_stack(d), hv(d, "spine1").update(ocs_address6="fe80::1")),
     "spines.spine1.ocs_address6 fe80::1 is a link-local address (fe80::/10)"),
    ("ocs_address6 without internal_ranges6", lambda d: hv(d, "spine1").update(ocs_address6="2001:db8:ffff::1"),
     "spines.spine1.ocs_address6 requires ocs_fabric.internal_ranges6 (the fabric's IPv6 ranges)"),
    ("IPv6 racks overlap",
     lambda d: (dual_stack(d), d["racks"]["r02"].update(instance_subnets6=["2001:db8:0:1:8000::/80"])),
     "ocs_racks.r02.instance_subnets6[0] 2001:db8:0:1:8000::/80 overlaps ocs_racks.r01.instance_subnets6[0] "
     "2001:db8:0:1::/64"),
    ("IPv6 rack outside internal_ranges6",
     lambda d: (dual_stack(d), d["racks"]["r02"].update(instance_subnets6=["2001:db9:0:2::/64"])),
     "ocs_racks.r02.instance_subnets6[0] 2001:db9:0:2::/64 is not inside internal_ranges6 [2001:db8::/32]"),
    ("IPv6 rack without internal_ranges6",
     lambda d: d["racks"]["r01"].update(instance_subnets6=["2001:db8:0:1::/64"]),
     "ocs_racks.r01.instance_subnets6 requires ocs_fabric.internal_ranges6 (the fabric's IPv6 ranges)"),
    ("IPv6 rack host bits", lambda d: (dual_stack(d), d["racks"]["r01"].update(
        instance_subnets6=["2001:db8:0:1::1/64"])),
     "ocs_racks.r01.instance_subnets6[0] 2001:db8:0:1::1/64 has host bits set (the network is 2001:db8:0:1::/64)"),
    ("IPv6 rack subnet too large", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6=["2001:db8:100::/40"])),
     "ocs_racks.r02.instance_subnets6[0] 2001:db8:100::/40 is larger than a /48"),
    ("IPv6 rack subnet too small", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6=["2001:db8:0:2::/124"])),
     "ocs_racks.r02.instance_subnets6[0] 2001:db8:0:2::/124 is smaller than a /120"),
    ("IPv6 rack subnet multicast", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6=["ff05::/64"])),
     "ocs_racks.r02.instance_subnets6[0] ff05::/64 overlaps the multicast range ff00::/8 (not a global network)"),
    ("IPv6 rack subnet link-local", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6=["fe80::/64"])),
     "ocs_racks.r02.instance_subnets6[0] fe80::/64 overlaps the link-local range fe80::/10 (not a global network)"),
    ("IPv6 rack subnets not a list", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6="2001:db8:0:2::/64")),
     "ocs_racks.r02.instance_subnets6 must be a list of IPv6 networks, got 2001:db8:0:2::/64"),
    ("internal_ranges6 host bits", lambda d: (dual_stack(d), d["fabric"].update(internal_ranges6=["2001:db8::1/32"])),
     "ocs_fabric.internal_ranges6[0] 2001:db8::1/32 has host bits set (the network is 2001:db8::/32)"),
    ("internal_ranges6 everything", lambda d: (dual_stack(d), d["fabric"].update(internal_ranges6=["::/0"])),
     "ocs_fabric.internal_ranges6[0] ::/0 covers every address (::/0 is not allowed)"),
    ("internal_ranges6 overlapping", lambda d: (dual_stack(d), d["fabric"].update(
        internal_ranges6=["2001:db8::/32", "2001:db8:0:1::/64"])),
     "ocs_fabric.internal_ranges6[1] 2001:db8:0:1::/64 overlaps internal_ranges6[0] 2001:db8::/32"),
    ("internal_ranges6 IPv4", lambda d: (dual_stack(d), d["fabric"].update(internal_ranges6=["198.18.0.0/15"])),
     "ocs_fabric.internal_ranges6[0] 198.18.0.0/15 is not an IPv6 network in CIDR notation (address/len)"),
    ("ip6 multicast", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="ff02::1")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 ff02::1 is a multicast address (ff00::/8)"),
    ("ip6 link-local", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="fe80::d")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 fe80::d is a link-local address (fe80::/10)"),
    ("ip6 loopback", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="::1")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 ::1 is the loopback address"),
    ("ip6 unspecified", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="::")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 :: is the unspecified address"),
    ("ip6 IPv4-mapped", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="::ffff:198.19.2.13")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 ::ffff:c613:20d is an IPv4-mapped address (::ffff:0:0/96)"),
    ("ip6 with zone id", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="fe80::d%eth0")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 'fe80::d%eth0' is not an IPv6 address (no zone id: "
     "'%eth0')"),
    ("ip6 with trailing newline", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:2::d\n")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 '2001:db8:0:2::d\\n' is not an IPv6 address"),
    ("ip6 with a space", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6=" 2001:db8:0:2::d")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 ' 2001:db8:0:2::d' is not an IPv6 address"),
    ("ip6 an IPv4 address", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="198.19.2.13")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 198.19.2.13 is not an IPv6 address"),
    ("ip6 subnet-router anycast", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:2::")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 2001:db8:0:2:: is the subnet-router anycast address of "
     "2001:db8:0:2::/64 (its first address)"),
    ("ip6 the taps' gateway address", lambda d: (dual_stack(d), inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:2::1")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 2001:db8:0:2::1 is the gateway address of "
     "2001:db8:0:2::/64 (every tap's, its second address)"),
    ("IPv6 instance service link-local", lambda d: (dual_stack(d), d["fabric"].update(instance_services=[
        {"address": "fe80::53", "proto": "udp", "port": 53}])),
     "ocs_fabric.instance_services[0].address fe80::53 is a link-local address (fe80::/10)"),
    ("IPv6 instance service not an address", lambda d: (dual_stack(d), d["fabric"].update(instance_services=[
        {"address": "2001:db8::53::1", "proto": "udp", "port": 53}])),
     "ocs_fabric.instance_services[0].address 2001:db8::53::1 is not an IPv6 address"),
    ("IPv6 instance service in an IPv4-only fabric", lambda d: d["fabric"].update(instance_services=[
        {"address": "2001:db8::53", "proto": "udp", "port": 53}]),
     "ocs_fabric.instance_services[0].address 2001:db8::53 is not an IPv4 address"),
    ("ip6 beyond the first /64 of a wider subnet", lambda d: (dual_stack(d), d["racks"]["r02"].update(
        instance_subnets6=["2001:db8:0:200::/56"]), inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:201::d")),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 2001:db8:0:201::d is outside 2001:db8:0:200::/64, the first "
     "/64 of 2001:db8:0:200::/56 (DHCPv6 serves a subnet wider than a /64 in its first only)"),
    ("dns_servers6 link-local", lambda d: (dual_stack(d), d["fabric"].update(dns_servers6=["2001:db8::53", "fe80::53"])),
     "ocs_fabric.dns_servers6[1] fe80::53 is a link-local address (fe80::/10)"),
    ("dns_servers6 multicast", lambda d: (dual_stack(d), d["fabric"].update(dns_servers6=["ff02::fb"])),
     "ocs_fabric.dns_servers6[0] ff02::fb is a multicast address (ff00::/8)"),
    ("dns_servers6 an IPv4 address", lambda d: (dual_stack(d), d["fabric"].update(dns_servers6=["198.18.0.53"])),
     "ocs_fabric.dns_servers6[0] 198.18.0.53 is not an IPv6 address"),
    ("dns_servers6 with zone id", lambda d: (dual_stack(d), d["fabric"].update(dns_servers6=["fe80::53%eth0"])),
     "ocs_fabric.dns_servers6[0] 'fe80::53%eth0' is not an IPv6 address (no zone id: '%eth0')"),
    ("dns_servers6 not a list", lambda d: (dual_stack(d), d["fabric"].update(dns_servers6="2001:db8::53")),
     "ocs_fabric.dns_servers6 must be a list of IPv6 addresses, got 2001:db8::53"),
    ("dns_servers6 in an IPv4-only fabric", lambda d: d["fabric"].update(dns_servers6=["2001:db8::53"]),
     "ocs_fabric.dns_servers6 requires ocs_fabric.internal_ranges6 (the fabric's IPv6 ranges)"),
    ("IPv6 management range over an IPv6 instance subnet", lambda d: (dual_stack(d), d["fabric"].update(
        management_ranges=["192.0.2.0/24", "2001:db8::/56"])),
     "ocs_fabric.management_ranges[1] 2001:db8::/56 overlaps rack r01 instance subnet 2001:db8:0:1::/64 "
     "(tenants would be management)"),
    ("IPv6 management range inside an IPv6 instance subnet", lambda d: (dual_stack(d), d["fabric"].update(
        management_ranges=["2001:DB8:0:2::100/120", "192.0.2.0/24"])),
     "ocs_fabric.management_ranges[0] 2001:db8:0:2::100/120 overlaps rack r02 instance subnet 2001:db8:0:2::/64 "
     "(tenants would be management)"),
    ("IPv4 management range after an IPv6 one names its own index", lambda d: (dual_stack(d), d["fabric"].update(
        management_ranges=["2001:db8:ffff::/48", "192.0.2.0/24", "198.19.1.0/25"])),
     "ocs_fabric.management_ranges[2] 198.19.1.0/25 overlaps rack r01 instance subnet 198.19.1.0/24 "
     "(tenants would be management)"),
    ("IPv6 monitoring range over an IPv6 instance subnet", lambda d: (dual_stack(d), d["fabric"].update(
        monitoring_ranges=["2001:db8::/32"])),
     "ocs_fabric.monitoring_ranges[0] 2001:db8::/32 overlaps rack r01 instance subnet 2001:db8:0:1::/64 "
     "(tenants would be monitoring)"),
    ("ip6 in an IPv4-only fabric", lambda d: inst(d, "hv-r02-01", 0).update(ip6="2001:db8:0:2::d"),
     "hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 2001:db8:0:2::d is outside rack r02 instance_subnets6 []"),
    ("derivation with too long a prefix", lambda d: (dual_stack(d), d["racks"]["r01"].update(
        instance_subnets6=["2001:db8:0:1::/112"])),
     "ocs_racks.r01.instance_ip6_from_ip4 is true, but instance_subnets6[0] 2001:db8:0:1::/112 is longer than a /96 "
     "(an instance's IPv4 address fills the low 32 bits of its derived address)"),
    ("derivation without IPv6 subnets", lambda d: (dual_stack(d), d["racks"]["r01"].pop("instance_subnets6")),
     "ocs_racks.r01.instance_ip6_from_ip4 is true, but the rack has no instance_subnets6 (the derived addresses lie "
     "in the first)"),
    ("derivation switch not a bool", lambda d: (dual_stack(d), d["racks"]["r02"].update(instance_ip6_from_ip4="yes")),
     "ocs_racks.r02.instance_ip6_from_ip4 yes must be true or false"),
    ("unknown rack field, dual stack", lambda d: (dual_stack(d), d["racks"]["r01"].update(instance_subnet6=[])),
     "ocs_racks.r01.instance_subnet6 is not a known field (known: asn, host_subnet, instance_gateway, "
     "instance_ip6_from_ip4, instance_subnets, instance_subnets6)"),
    ("unknown instance field, dual stack", lambda d: (dual_stack(d), inst(d, "hv-r01-02", 0).update(ipv6="::")),
     "hypervisors.hv-r01-02.ocs_instances[0] (vm-c).ipv6 is not a known field (known: conn_limit, floating_ip, "
     "inbound6, interface, ip, ip6, mac, name)"),
    ("unknown fabric field, dual stack", lambda d: (dual_stack(d), d["fabric"].update(internal_range6=[])),
     "ocs_fabric.internal_range6 is not a known field (known: bgp, border, border_peers, conn_limit, "
     "dhcp_lease_time, dns_servers, dns_servers6, domain, edge_mtu, floating_ranges, gateway_asn, host_policy, "
     "host_services, "
     "hypervisor_asn, inbound6, instance_ifname_prefix, instance_services, instances_file, internal_ranges, "
     "internal_ranges6, "
     "management_ranges, metadata, monitoring_ranges, mtu, nat_mode, routing_mode, spine_asn)"),
]


@pytest.mark.parametrize("mutate,expected", [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_rule(data, mutate, expected):
    mutate(data)
    assert expected in problems_of(data)


# Inputs that once crashed the validator (a TypeError instead of a named problem; the corpus of
# test_corpus_golden recorded them as CRASH). Kept out of RULES, whose cases are also the corpus's.
TYPE_RULES = [
    ("group member a number", lambda d: d["groups"]["tors"].__setitem__(1, 4809062995),
     "tors[1] 4809062995 must be a host name (a string)"),
    ("group member a bool", lambda d: d["groups"]["tors"].__setitem__(1, True),
     "tors[1] True must be a host name (a string)"),
    ("group member a list", lambda d: d["groups"]["tors"].__setitem__(1, []),
     "tors[1] [] must be a host name (a string)"),
    ("group member a mapping", lambda d: d["groups"]["tors"].__setitem__(1, {"interface": "eth7"}),
     "tors[1] {'interface': 'eth7'} must be a host name (a string)"),
    ("group not a list", lambda d: d["groups"].update(spines=5),
     "spines must be a list of host names, got 5"),
    ("host variables not a mapping", lambda d: d["hostvars"].update({"hv-r01-01": ["ocs_address"]}),
     "hypervisors.hv-r01-01 host variables must be a mapping, got ['ocs_address']"),
    ("hostvars not a mapping", lambda d: d.update(hostvars=["hv-r01-01"]),
     "hostvars must be a mapping of host name to its variables"),
]


@pytest.mark.parametrize("mutate,expected", [r[1:] for r in TYPE_RULES], ids=[r[0] for r in TYPE_RULES])
def test_type_rule(data, mutate, expected):
    mutate(data)
    assert expected in problems_of(data)


def test_all_problems_reported_together(data):
    data["racks"]["r02"]["asn"] = 65101
    inst(data, "hv-r01-02", 0)["mac"] = "bad"
    hv(data, "hv-r02-01")["ocs_rack"] = "r09"
    with pytest.raises(FabricError) as err:
        build(data)
    assert len(err.value.problems) >= 3
    assert str(err.value).startswith("fabric is invalid: ")


@pytest.mark.parametrize("name", ["vm\nx", "vm,x", "vm=x", "vm x", "vm;reboot", "$(id)", "vm`id`", "-vm", "vm-",
                                  "VM", "a" * 64, ""])
def test_instance_names_cannot_inject(data, name):
    inst(data, "hv-r01-02", 0)["name"] = name
    assert any(".name " in p and "RFC 1123" in p for p in problems_of(data))


def test_dotted_host_name_may_carry_its_address_on_its_uplink(data):
    """A host name may contain dots: its own ocs_address on its uplink is no clash."""
    data["groups"]["hypervisors"][0] = "hv.r01.01"
    data["hostvars"]["hv.r01.01"] = data["hostvars"].pop("hv-r01-01")
    assert problems_of(data) == []
    data["hostvars"]["hv-r01-02"]["ocs_uplinks"][0]["address"] = "198.18.1.11/25"
    assert problems_of(data) == ["hypervisors.hv-r01-02.ocs_uplinks[0].address 198.18.1.11 is also an address of "
                                 "hv.r01.01"]


def test_a_place_is_built_only_when_printed_and_once():
    from ansible_collections.ocs.l3.plugins.module_utils.check import Place, where
    calls = []

    def build(*parts):
        calls.append(parts)
        return where(*parts)

    inner = Place(build, "hypervisors", "hv-1", "ocs_instances", 2)
    place = Place(where, inner, "ip")
    assert calls == []
    assert str(place) == "hypervisors.hv-1.ocs_instances[2].ip" == "%s" % place
    assert str(place) and len(calls) == 1
