"""ocs-drift (plugins/plugin_utils/drift.py): the report and its exit codes from Ansible's JSON output."""

import io

from ansible_collections.ocs.l3.plugins.plugin_utils import drift as drift_tool


def _run(tasks, stats=("hv1", "hv2", "spine1")):
    return {"plays": [{"tasks": tasks}], "stats": {h: {} for h in stats}}


def _task(name, **hosts):
    return {"task": {"name": name}, "hosts": hosts}


def test_converged_fabric_reports_no_drift():
    out = io.StringIO()
    drift, failed = drift_tool.report(_run([_task("Install the desired route table", hv1={"changed": False},
                                                   hv2={"changed": False})]), out)
    assert (drift, failed) == ({}, set())
    assert out.getvalue().strip().endswith("3 host(s) checked, 0 drifted, 0 failed")


def test_changed_task_is_drift_with_its_diff():
    out = io.StringIO()
    res = {"changed": True, "diff": [{"before": "a\n", "after": "b\n"}]}
    drift, failed = drift_tool.report(_run([
        _task("Validate the whole fabric and render the files of this play's hosts", spine1={"changed": False}),
        _task("Install the DHCP host file", hv2=res),
        _task("Reconcile kernel routes with the table", hv2={"changed": True}),
    ]), out)
    assert list(drift) == ["hv2"] and [n for n, _ in drift["hv2"]] == [
        "Install the DHCP host file", "Reconcile kernel routes with the table"]
    text = out.getvalue()
    assert "DRIFT   hv2: 2 task(s) would change" in text and "before: 'a\\n'" in text and "after:  'b\\n'" in text


def test_failed_or_unreachable_hosts_are_reported():
    out = io.StringIO()
    _, failed = drift_tool.report(_run([_task("Take this host's run lease", hv1={"failed": True, "msg": "busy"},
                                              hv2={"unreachable": True, "msg": "ssh"})]), out)
    assert failed == {"hv1", "hv2"}
    assert "FAILED  hv1: Take this host's run lease: busy" in out.getvalue()


def test_report_as_data_and_its_option(tmp_path):
    data = _run([_task("Install the DHCP host file", hv2={"changed": True}, hv1={"changed": False}),
                 _task("Take this host's run lease", spine1={"failed": True, "msg": "busy"})])
    assert drift_tool.report_data(data) == {"checked": ["hv1", "hv2", "spine1"],
                                            "drift": {"hv2": ["Install the DHCP host file"]},
                                            "failed": {"spine1": ["Take this host's run lease"]}}
    path = str(tmp_path / "r.json")
    assert drift_tool.split_report_json(["-i", "inv", "--report-json", path, "--limit", "hv1"]) == (
        path, ["-i", "inv", "--limit", "hv1"])
    assert drift_tool.split_report_json(["-i", "inv"]) == (None, ["-i", "inv"])
