#!/bin/sh
# Runs INSIDE the new root (chroot) as an mmdebstrap --customize-hook, see build.sh.
# Part of the image recipe: editing this file changes the image tag.
set -eu

# --- systemd in a podman container -------------------------------------------------------
# Units that cannot work (no udev, no ttys, no real disks/kernel fs) or that only add noise,
# timers that would run apt/man-db/fstrim behind the tests' back.
# (each unit separately, so one missing unit does not skip the others)
for u in systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
  systemd-udev-trigger.service systemd-udev-settle.service \
  getty@tty1.service getty.target console-getty.service serial-getty@.service \
  systemd-networkd-wait-online.service systemd-remount-fs.service systemd-firstboot.service \
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount \
  systemd-modules-load.service kmod-static-nodes.service systemd-sysctl.service \
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
  dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer
do
  systemctl mask "$u" >/dev/null 2>&1 || true
done

# podman mounts /proc/sys read-only; the container has its own network namespace, so make
# only /proc/sys/net writable (per-interface sysctls such as net.ipv4.conf.tap-x.proxy_arp that
# roles set at runtime). kernel.*/vm.* stay read-only (they are not namespaced: host-wide).
# Needs CAP_SYS_ADMIN (molecule `capabilities: [..., SYS_ADMIN]`).
cat > /etc/systemd/system/ocs-l3-proc-sys-net-rw.service <<'UNIT'
[Unit]
Description=Make /proc/sys/net writable inside the test container (own netns)
DefaultDependencies=no
ConditionVirtualization=container
Before=sysinit.target systemd-sysctl.service frr.service
After=systemd-journald.socket

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'grep -q " /proc/sys/net proc .*rw," /proc/self/mounts || { mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net; }'

[Install]
WantedBy=sysinit.target
UNIT
systemctl enable ocs-l3-proc-sys-net-rw.service >/dev/null 2>&1

# --- daemons the project manages itself ----------------------------------------------------
# The distro dnsmasq.service (all interfaces, port 53) would collide with the project's own
# dnsmasq unit: disabled, not masked (a role may still manage/mask it; that stays a no-op-safe task).
systemctl disable dnsmasq.service >/dev/null 2>&1 || true
# FRR: frr.service stays enabled; /etc/frr/daemons keeps bgpd=no (Debian default) until a role
# turns it on, so an unconfigured node runs only zebra/staticd/watchfrr.
sed -i 's/^bgpd=.*/bgpd=no/' /etc/frr/daemons

# --- generic image hygiene -----------------------------------------------------------------
# Fresh machine-id per container (systemd fills an empty file at boot).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -sf /etc/machine-id /var/lib/dbus/machine-id
# Hostname comes from podman.
rm -f /etc/hostname
# systemd should not wait for anything network-ish.
mkdir -p /etc/systemd/system.conf.d
cat > /etc/systemd/system.conf.d/ocs-l3-container.conf <<'CONF'
[Manager]
DefaultTimeoutStartSec=30s
DefaultTimeoutStopSec=5s
CONF
# journald: volatile, small.
mkdir -p /etc/systemd/journald.conf.d
cat > /etc/systemd/journald.conf.d/ocs-l3-container.conf <<'CONF'
[Journal]
Storage=volatile
RuntimeMaxUse=16M
CONF
# apt: never pull recommends if a role installs something later.
cat > /etc/apt/apt.conf.d/90ocs-l3-no-recommends <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
CONF
