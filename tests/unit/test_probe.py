"""tests/probe/ocs-probe, the one probe of the netns labs and the molecule fabric, on loopback."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

PROBE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "probe", "ocs-probe")


def probe(*args, **kw):
    return subprocess.run([sys.executable, PROBE] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=30, **kw)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(request):
    procs = []

    def start(*args):
        proc = subprocess.Popen([sys.executable, PROBE, "--alarm", "60", "serve"] + [str(a) for a in args],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_tcp_answer_names_the_server_and_the_source_and_echoes(server):
    port = free_port()
    server(port, "--name", "srv")
    res = probe("ask", "127.0.0.1", port, "127.0.0.1", "--peer")
    assert res.returncode == 0 and res.stdout.split() == ["srv", "127.0.0.1", "127.0.0.1"]
    bulk = json.loads(probe("bulk", "127.0.0.1", port, 300000).stdout)
    assert bulk["greeting"] == ["srv", "127.0.0.1"] and bulk["echoed"] == 300000


def test_without_a_name_the_answer_is_the_source_alone(server):
    port = free_port()
    server(port)
    assert probe("ask", "127.0.0.1", port).stdout == "127.0.0.1\n"
    out = json.loads(probe("flows", 0.5, "127.0.0.1", port, "127.0.0.1", "127.0.0.1").stdout)
    assert out == {"ok": [["127.0.0.1", "127.0.0.1"]] * 2, "failed": []}


def test_udp_answer_and_the_source_port(server):
    port = free_port(socket.SOCK_DGRAM)
    server(port, "--udp", "--name", "u")
    sport = free_port(socket.SOCK_DGRAM)
    assert probe("ask", "127.0.0.1", port, "--udp", "--sport", sport, "--peer").stdout.split() == [
        "u", "127.0.0.1", "127.0.0.1"]


def test_no_answer_is_exit_1():
    port = free_port()
    res = probe("ask", "127.0.0.1", port, "--timeout", "1")
    assert res.returncode == 1 and "no answer" in res.stderr
    assert probe("flows", 0.2, "127.0.0.1", port, "127.0.0.1").stdout.count("ConnectionRefusedError") == 1


def test_udp_listen_collects_what_was_sent():
    port = free_port(socket.SOCK_DGRAM)
    listener = subprocess.Popen([sys.executable, PROBE, "listen-udp", str(port), "1.5"], stdout=subprocess.PIPE,
                                text=True)
    time.sleep(0.5)
    assert probe("send-udp", "127.0.0.1", "127.0.0.1", port, "hello").returncode == 0
    out, dummy = listener.communicate(timeout=10)
    assert json.loads(out) == [["127.0.0.1", "hello"]]
