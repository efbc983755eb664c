#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A per-host lease that keeps two ocs-l3 runs from interleaving on one host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_host_lock
version_added: 0.4.0
short_description: Take or give back the ocs-l3 run lease of a host
description:
  - A run takes the lease (a small JSON file, by default under C(/run/ocs-l3), so a reboot clears it)
    before it changes anything on the host and gives it back at the end. A second run waits up to
    O(wait) seconds, then fails for this host with the holder's run id; it never interleaves.
  - The check-and-replace happens under C(flock) of a side file, so two runs racing for an expired or
    free lease cannot both win.
  - A lease whose O(ttl) has passed is taken over; so is one held by a run listed in O(break_owners)
    (the reconcile wrapper lists a run it knows was killed).
  - >-
    With O(started) (when the run began; one value for all of a run's hosts), two runs that want the
    same hosts cannot deadlock (each holding a host the other waits for): wait-die, the older run
    waits for a younger holder, the younger run gives way at once (fails on that host, naming the
    older run) when the holder is older. Ties go to the smaller run id.
options:
  state:
    description: C(acquired) or C(released).
    type: str
    choices: [acquired, released]
    default: acquired
  owner:
    description: The run id.
    type: str
    required: true
  path:
    description: The lease file.
    type: path
    default: /run/ocs-l3/run.lease
  ttl:
    description: Seconds after which a lease is considered abandoned.
    type: int
    default: 1800
  wait:
    description: Seconds to wait for a lease held by another run.
    type: int
    default: 300
  break_owners:
    description: Run ids known to be dead; their leases are taken over at once.
    type: list
    elements: str
    default: []
  started:
    description: When this run began (seconds since the epoch); orders concurrent runs (wait-die).
    type: float
  generation:
    description:
      - This run's inventory generation. With O(generation_file), C(acquired) refuses (fails, gives the
        lease it just took back, changes nothing) a host whose recorded generation is newer, and
        C(released) records it there before giving the lease back (a change only when it differs).
    type: int
  generation_file:
    description: The file holding the generation the host last applied.
    type: path
  reconciled_file:
    description:
      - C(released) only. Touched (its mtime is the end of the last successful run); never reported as a change.
      - C(released) fails, recording nothing, when another run has taken this run's lease over.
    type: path
  record:
    description: C(released) only. V(false) (a check-mode run) writes neither O(generation_file) nor O(reconciled_file).
    type: bool
    default: true
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Take this host's run lease
  ocs_host_lock:
    owner: "{{ _ocs_render_result.run_id }}"
"""

RETURN = r"""
previous_owner:
  description: The owner of the lease that was taken over, if any.
  type: str
  returned: when a lease was taken over
waited:
  description: Seconds this run waited for another run's lease on this host (0 when it was free).
  type: float
  returned: when the lease was acquired, or the wait ran out
waited_for:
  description: The run whose lease this run waited for.
  type: str
  returned: when it waited
host_generation:
  description: The generation the host had recorded (C(acquired) with O(generation_file)), or null.
  type: int
  returned: when O(generation_file) is given
gave_way:
  description: This run gave way to an older run holding the lease (wait-die); the task fails.
  type: bool
  returned: when it gave way
owner:
  description: The run holding the lease (on failure).
  type: str
  returned: when the task failed
"""

import fcntl
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import LEASE_PATH
from ansible_collections.ocs.l3.plugins.module_utils.files import generation_or_none, write_atomic, write_generation


def read(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def decide(lease, owner, now, break_owners, started=None):
    """Pure: 'mine', 'free', 'take' (expired/broken), 'busy' (wait) or 'yield'
    (wait-die: the holder is an older run, so this younger one gives way)."""
    if lease is None:
        return "free"
    if lease.get("owner") == owner:
        return "mine"
    if lease.get("expires", 0) <= now or lease.get("owner") in break_owners:
        return "take"
    theirs = lease.get("started")
    if started is not None and theirs is not None and (theirs, lease.get("owner")) < (started, owner):
        return "yield"
    return "busy"


def rollback_problem(host_generation, generation):
    """Pure: the refusal message when this run's ``generation`` is older than the host's, else None."""
    if generation is None or host_generation is None or host_generation <= generation:
        return None
    return ("this host has applied generation %d, newer than this run's %d: refusing to roll it back "
            "(run from an up-to-date inventory)" % (host_generation, generation))


def record(generation_file, generation, reconciled_file):
    """End of a successful run: the generation written when it differs (returns whether it did),
    the reconciled file touched."""
    changed = bool(generation_file and generation is not None and write_generation(generation_file, generation))
    if reconciled_file:
        os.makedirs(os.path.dirname(reconciled_file), mode=0o755, exist_ok=True)
        with open(reconciled_file, "a"):
            pass
        os.chmod(reconciled_file, 0o644)
        os.utime(reconciled_file)
    return changed


def write(path, owner, ttl, now, started=None):
    write_atomic(path, json.dumps({"owner": owner, "taken": int(now), "expires": int(now + ttl), "started": started}))


def release(module, lease):
    """State released, under the mutex: record the run, then give the lease back (exits)."""
    p = module.params
    if lease is not None and lease.get("owner") != p["owner"]:
        # Taken over (expired, or this run listed as dead): another run may have
        # changed the host since; this one must not claim its state.
        module.fail_json(msg="run %s's lease on this host was taken over by run %s: not recording this run's "
                         "generation" % (p["owner"], lease.get("owner")), owner=lease.get("owner"))
    # The run's bookkeeping first: a lease is given back only after its run is recorded.
    changed = p["record"] and record(p["generation_file"], p["generation"], p["reconciled_file"])
    if lease is not None:
        os.unlink(p["path"])
    module.exit_json(changed=changed, generation=p["generation"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["acquired", "released"], default="acquired"),
            owner=dict(type="str", required=True),
            path=dict(type="path", default=LEASE_PATH),
            ttl=dict(type="int", default=1800),
            wait=dict(type="int", default=300),
            break_owners=dict(type="list", elements="str", default=[]),
            started=dict(type="float"),
            generation=dict(type="int"),
            generation_file=dict(type="path"),
            reconciled_file=dict(type="path"),
            record=dict(type="bool", default=True),
        ),
        supports_check_mode=False,
    )
    p = module.params
    path, owner = p["path"], p["owner"]
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    began = time.time()
    deadline = began + p["wait"]
    waited_for = None
    with open(path + ".mutex", "a") as mutex:
        while True:
            fcntl.flock(mutex, fcntl.LOCK_EX)
            try:
                now = time.time()
                lease = read(path)
                if p["state"] == "released":
                    release(module, lease)
                verdict = decide(lease, owner, now, p["break_owners"], p["started"])
                if verdict == "yield":
                    module.fail_json(msg="an older ocs-l3 run (%s) holds this host's lease: this run gives way "
                                     "(no deadlock between runs); the older run converges the host"
                                     % lease.get("owner"), owner=lease.get("owner"), gave_way=True)
                if verdict != "busy":
                    result = dict(changed=verdict != "mine", waited=round(time.time() - began, 1))
                    if p["generation_file"]:
                        result["host_generation"] = generation_or_none(p["generation_file"])  # damaged: None
                        problem = rollback_problem(result["host_generation"], p["generation"])
                        if problem:  # nothing taken, nothing changed
                            module.fail_json(msg=problem, **result)
                    write(path, owner, p["ttl"], now, p["started"])
                    if waited_for:
                        result["waited_for"] = waited_for
                    if verdict == "take":
                        result["previous_owner"] = lease.get("owner")
                        module.warn("took over the lease of run %s (%s)" % (
                            lease.get("owner"), "expired" if lease.get("expires", 0) <= now else "known dead"))
                    module.exit_json(**result)
            finally:
                fcntl.flock(mutex, fcntl.LOCK_UN)
            if time.time() >= deadline:
                module.fail_json(msg="another ocs-l3 run (%s) holds this host's lease until %s; not interleaving"
                                 % (lease.get("owner"), time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(
                                     lease.get("expires", 0)))), owner=lease.get("owner"),
                                 waited=round(time.time() - began, 1), waited_for=waited_for)
            waited_for = lease.get("owner")
            time.sleep(1)


if __name__ == "__main__":
    main()
