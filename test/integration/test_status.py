"""`crisp status`: the built binary asks a running test daemon over its socket, and what it
prints (text and --json) and its exit status are checked against what the test made through
its own CRI client."""
import calendar
import json
import os
import signal
import socket
import subprocess
import time

import grpc

from container_harness import SLEEPER, alive, cenv, monitors, wait_for  # noqa: F401
from cri_client import pb
from crisp_daemon import CRISP

RECENT_ERRORS_MAX = 50  # server/recent-errors.h


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


# ---- monitors ----

def status_json(d):
    p = status("--json", "--listen", d.sock)
    assert p.returncode in (0, 1), p.stdout + p.stderr
    return json.loads(p.stdout)


def proc_rss(pid):
    """Rss of /proc/PID/smaps_rollup, in bytes."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no Rss in smaps_rollup of %d" % pid)


def test_status_reports_each_monitor_with_its_rss(cenv):  # noqa: F811
    ready_network(cenv.d)
    pod = cenv.run_pod("watched")
    running = cenv.run(pod, "runs", command=SLEEPER)
    created = cenv.create(pod, "waits", command=SLEEPER)
    r = status_json(cenv.d)
    mons = {m["containerId"]: m for m in r["info"]["monitors"]}
    assert set(mons) == {running, created}
    for cid, m in mons.items():
        [pid] = monitors(cid)
        assert m["pid"] == pid and m["alive"] is True
        real = proc_rss(pid)
        assert m["rssBytes"] > 0
        # The monitor is idle: its memory moves by a page or two at most between the reads.
        assert abs(m["rssBytes"] - real) <= max(256 * 1024, real // 5), (m, real)
    p = status("--listen", cenv.d.sock)
    assert "monitors       2, 2 alive" in p.stdout.splitlines(), p.stdout
    for cid, m in mons.items():
        assert any(x.startswith("  %s  pid %d " % (cid[:13], m["pid"])) and " alive  rss " in x
                   for x in p.stdout.splitlines()), p.stdout


def test_status_reports_a_killed_monitor_as_not_alive(cenv):  # noqa: F811
    ready_network(cenv.d)
    pod = cenv.run_pod("orphaned")
    victim = cenv.run(pod, "victim", command=SLEEPER)
    other = cenv.run(pod, "other", command=SLEEPER)
    [pid] = monitors(victim)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid), what="monitor %d to die" % pid)
    r = status_json(cenv.d)
    mons = {m["containerId"]: m for m in r["info"]["monitors"]}
    assert mons[victim] == {"containerId": victim, "pid": pid, "alive": False, "rssBytes": 0}
    assert mons[other]["alive"] is True and mons[other]["rssBytes"] > 0
    assert r["info"]["monitorsAlive"] == 1
    p = status("--listen", cenv.d.sock)
    assert "monitors       2, 1 alive" in p.stdout.splitlines(), p.stdout
    assert "  %s  pid %-7d  not alive" % (victim[:13], pid) in p.stdout.splitlines(), p.stdout
    # The container is still removed whole (the teardown's leak check) without its monitor.
    cenv.stop(victim, timeout=1)
    cenv.remove(victim)


# ---- recent errors ----

def fail_container_status(d, cid):
    try:
        d.client.call("ContainerStatus", pb.ContainerStatusRequest(container_id=cid))
    except grpc.RpcError as e:
        return e
    raise AssertionError("ContainerStatus of '%s' succeeded" % cid)


def rfc3339_seconds(stamp):
    head, frac = stamp.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S")) + float("0." + frac)


def test_status_names_a_failed_call_in_recent_errors(crisp):
    assert status_json(crisp)["info"]["recentErrors"] == []
    before = time.time()
    e = fail_container_status(crisp, "f" * 64)
    assert e.code() == grpc.StatusCode.NOT_FOUND
    r = status_json(crisp)
    [err] = r["info"]["recentErrors"]
    assert err["method"] == "ContainerStatus" and err["code"] == "NOT_FOUND"
    assert err["message"] == e.details() and "f" * 64 in err["message"]
    assert before - 1 <= rfc3339_seconds(err["time"]) <= time.time() + 1, err
    p = status("--listen", crisp.sock)
    lines = p.stdout.splitlines()
    assert "recent errors  1, newest first" in lines, p.stdout
    assert "  %s  ContainerStatus  NOT_FOUND: %s" % (err["time"], e.details()) in lines


def test_recent_errors_are_bounded_and_newest_first(crisp):
    n = RECENT_ERRORS_MAX + 15
    for i in range(n):
        fail_container_status(crisp, "%064x" % i)
    # A message longer than the bound is cut, and still valid UTF-8.
    fail_container_status(crisp, "\u00e9" * 3000)
    r = status_json(crisp)
    errs = r["info"]["recentErrors"]
    assert len(errs) == RECENT_ERRORS_MAX
    assert len(errs[0]["message"].encode()) <= 512 + len("\u2026".encode())
    assert errs[0]["message"].endswith("\u2026"), errs[0]
    rest = [e["message"] for e in errs[1:]]
    want = ["%064x" % i for i in range(n - 1, n - RECENT_ERRORS_MAX, -1)]
    assert len(rest) == len(want)
    for msg, cid in zip(rest, want):
        assert cid in msg, (msg, cid)
    times = [rfc3339_seconds(e["time"]) for e in errs]
    assert times == sorted(times, reverse=True)
    assert "recent errors  %d, newest first" % RECENT_ERRORS_MAX in \
        status("--listen", crisp.sock).stdout.splitlines()
