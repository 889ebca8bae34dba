"""`crisp status`: the built binary asks a running test daemon over its socket, and what it
prints (text and --json) and its exit status are checked against what the test made through
its own CRI client."""
import json
import os
import socket
import subprocess

from container_harness import SLEEPER, cenv  # noqa: F401
from crisp_daemon import CRISP


def status(*args):
    return subprocess.run([CRISP, "status", *args], capture_output=True, text=True, timeout=60)


def ready_network(d):
    conf = {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "loopback"}]}
    with open(os.path.join(d.cni_dir, "10-t.conflist"), "w") as f:
        json.dump(conf, f)


def test_status_text_names_version_and_conditions(crisp):
    p = subprocess.run(crisp.command("status"), capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert not p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("crisp ") and "(CRI v1) on unix://%s" % crisp.sock in lines[0]
    assert "RuntimeReady   true" in lines
    network = [x for x in lines if x.startswith("NetworkReady")]
    assert network and "false  NetworkPluginNotReady: " in network[0], p.stdout
    assert crisp.cni_dir in network[0]
    assert "pods           0 ready, 0 notready" in lines
    assert "containers     0 created, 0 running, 0 exited, 0 unknown" in lines
    assert any(x.startswith("uptime ") for x in lines), p.stdout


def test_status_exits_0_when_ready(crisp):
    ready_network(crisp)
    p = status("--listen", crisp.sock)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "NetworkReady   true" in p.stdout.splitlines()


def test_status_json_counts_match_what_was_made(cenv):  # noqa: F811
    ready_network(cenv.d)
    pod = cenv.run_pod("counted")
    cenv.run(pod, "runs", command=SLEEPER)
    cenv.create(pod, "waits", command=SLEEPER)
    p = status("--json", "--listen", cenv.d.sock)
    assert p.returncode == 0, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["ready"] is True and r["errors"] == []
    assert r["socket"] == cenv.d.sock
    assert r["version"]["runtimeName"] == "crisp"
    assert r["version"]["runtimeApiVersion"] == "v1"
    assert {c["type"]: c["status"] for c in r["conditions"]} == {"RuntimeReady": True,
                                                                  "NetworkReady": True}
    assert r["pods"] == {"ready": 1, "notready": 0}
    assert r["containers"] == {"created": 1, "running": 1, "exited": 0, "unknown": 0}
    [fs] = r["imageFilesystems"]
    assert fs["usedBytes"] > 0 and fs["inodesUsed"] > 0
    assert fs["mountpoint"].startswith(cenv.d.root)
    assert r["info"]["monitorsAlive"] == 1
    assert r["info"]["configFiles"] == [cenv.d.conf_file]
    assert r["info"]["config"]["crisp"]["listen"] == cenv.d.sock


def test_status_missing_socket_exits_2_naming_it(tmp_path):
    path = str(tmp_path / "none.sock")
    p = status("--listen", path)
    assert p.returncode == 2 and not p.stdout
    assert "'%s'" % path in p.stderr and "is crisp running?" in p.stderr, p.stderr


def test_status_refused_socket_exits_2_naming_it(tmp_path):
    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # bound, never listening: connect is refused
    try:
        p = status("--json", "--listen", path)
    finally:
        s.close()
    assert p.returncode == 2 and not p.stdout
    assert "'%s'" % path in p.stderr and "Connection refused" in p.stderr, p.stderr
