"""A private mount and network namespace whose writes land in overlays, for running an apply on
this machine without touching it (bench/pull.py, tests/integration/test_bundles.py).

``PRELUDE`` is the start of a bash script run with ``ARGV``: overlays on /etc, /usr/lib and
/var/lib (upper and work directories under ``{t}``, a ``str.format`` field the caller fills with
its scratch directory, together with its own fields), a fresh /run, loopback up.
"""

ARGV = ["unshare", "--mount", "--net", "--propagation", "private", "bash"]

PRELUDE = """set -e
for d in etc usr/lib var/lib; do
  mkdir -p {t}/up/$d {t}/work/$d
  mount -t overlay overlay -o lowerdir=/$d,upperdir={t}/up/$d,workdir={t}/work/$d /$d
done
mount -t tmpfs tmpfs /run
ip link set lo up
"""
