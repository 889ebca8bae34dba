"""The checks behind every fixture's teardown, checked themselves: each kind of leak is planted
and must be reported (then removed), and so must each kind of crash. Only the daemon-end test
starts crisp; the rest plant by hand."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

import crashcheck
import leakcheck
from crisp_daemon import CrispDaemon
from leakcheck import LeakCheck, Scope


def unique(prefix):
    return "%s%s" % (prefix, uuid.uuid4().hex[:8])


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture
def check(tmp_path):
    """A LeakCheck over tmp_path; what the test planted is gone afterwards."""
    c = LeakCheck()
    scope = c.add(Scope(str(tmp_path)))
    yield c, scope
    c.clean()
    assert not c.leaks(), "the checker's clean() left: %s" % c.leaks()


def only(found, prefix):
    return [f for f in found if f.startswith(prefix)]


# ---- network: compared with the snapshot ----

def test_link_is_reported(check):
    c, _ = check
    name = unique("crisp-l")  # IFNAMSIZ: at most 15 characters
    sh("ip", "link", "add", name, "type", "bridge")  # no dummy module on every kernel
    assert c.leaks() == ["link %s" % name]


def test_iptables_rule_and_user_chain_are_reported(check):
    c, _ = check
    chain = unique("CRISP-LK-").upper()
    sh("iptables", "-t", "filter", "-N", chain)
    sh("iptables", "-t", "filter", "-A", "INPUT", "-s", "192.0.2.7/32", "-j", chain)
    found = c.leaks()
    assert "iptables *filter :%s" % chain in found, found
    assert any("-A INPUT -s 192.0.2.7/32 -j %s" % chain in f for f in found), found
    assert len(found) == 2, found


def test_builtin_chains_of_a_table_used_first_are_no_leak(check):
    """The bug this checker was rebuilt for: a table's header and built-in chains appear on its
    first use (in a fresh network namespace, when portmap first touches nat)."""
    c, _ = check
    tables = {t for t, _ in leakcheck.iptables_items()}
    saved = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    fresh = [t for t in ("raw", "mangle", "security", "nat") if "*" + t not in saved]
    if not fresh:
        pytest.skip("every table is in use already in this network namespace")
    rule = ["OUTPUT", "-s", "192.0.2.9/32", "-j", "ACCEPT"]
    sh("iptables", "-t", fresh[0], "-A", *rule)
    sh("iptables", "-t", fresh[0], "-D", *rule)
    after = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    assert "*" + fresh[0] in after
    assert c.leaks() == [] and {t for t, _ in leakcheck.iptables_items()} == tables


def test_shared_portmap_chains_are_no_leak(check):
    c, _ = check
    if c.shared_portmap_was_there():
        pytest.skip("portmap's shared chains exist already in this network namespace")
    sh("iptables", "-t", "nat", "-N", "CNI-HOSTPORT-DNAT")
    sh("iptables", "-t", "nat", "-A", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL",
       "-j", "CNI-HOSTPORT-DNAT")
    assert c.leaks() == []
    c.clean()  # absent before, so removed
    assert "CNI-HOSTPORT-DNAT" not in subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout


# ---- a scope: must simply be gone ----

def test_mount_and_namespace_pin_are_reported(check, tmp_path):
    c, _ = check
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    sh("mount", "-t", "tmpfs", "none", str(mnt))
    pinned = tmp_path / "netns"
    pinned.touch()
    sh("mount", "--bind", "/proc/self/ns/net", str(pinned))
    assert sorted(c.leaks()) == ["mount %s (tmpfs)" % mnt, "nsfs pin %s" % pinned]


def test_ip_allocation_is_reported(check, tmp_path):
    c, scope = check
    cni, data = tmp_path / "cni", tmp_path / "ipam"
    cni.mkdir()
    with open(str(cni / "10-x.conflist"), "w") as f:
        json.dump({"cniVersion": "1.0.0", "name": "lk", "plugins": [
            {"type": "bridge", "ipam": {"type": "host-local", "dataDir": str(data)}}]}, f)
    scope.cni_dirs.append(str(cni))
    (data / "lk").mkdir(parents=True)
    for name in ("last_reserved_ip.0", "lock"):
        (data / "lk" / name).touch()
    assert c.leaks() == []
    (data / "lk" / "10.99.0.2").write_text("ctr\neth0")
    assert c.leaks() == ["IP allocation %s" % (data / "lk" / "10.99.0.2")]
    (data / "lk" / "10.99.0.2").unlink()


def test_cgroups_are_reported(check):
    c, scope = check
    fake_id = uuid.uuid4().hex * 2
    by_id = os.path.join(leakcheck.CGROUP_ROOT, "pids", "crisp-" + fake_id)
    by_name = os.path.join(leakcheck.CGROUP_ROOT, "pids", unique("lk-"))
    if not os.path.isdir(os.path.dirname(by_id)):
        pytest.skip("no cgroup v1 pids hierarchy")
    os.mkdir(by_id)
    os.mkdir(by_name)
    try:
        # Named as crisp names a container's, new since the snapshot: a leak whoever made it
        # (a create a kill interrupted leaves one under an id no client ever heard of).
        assert c.leaks() == ["cgroup " + by_id]
        scope.ids.add(fake_id)
        scope.cgroup_names.append("/" + os.path.basename(by_name))
        assert sorted(c.leaks()) == sorted(["cgroup " + by_id, "cgroup " + by_name])
    finally:
        for d in (by_id, by_name):
            if os.path.isdir(d):
                os.rmdir(d)


def test_monitor_is_reported(check, tmp_path):
    c, _ = check
    # Named crisp-conmon and naming the test's directory, as a monitor does.
    p = subprocess.Popen(["crisp-conmon", "-c", "import time; time.sleep(600)",
                          "--state-dir", str(tmp_path / "state")], executable=sys.executable)
    try:
        # Popen returns before the child has exec'd: wait until the plant is in place.
        deadline = time.monotonic() + 10
        while "crisp-conmon" not in " ".join(leakcheck.read_cmdline(p.pid) or []) \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        found = [f for f in _leaks_no_grace(c) if f.startswith("monitor pid %d:" % p.pid)]
        assert found, _leaks_no_grace(c)
        c.clean()
        assert p.wait(10) == -signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def _leaks_no_grace(c):
    return [f for s in c.scopes for f in s.leaks(monitor_grace=0)]


def test_runc_state_is_reported(check, tmp_path):
    c, scope = check
    root = tmp_path / "run" / "runtime" / "runc"
    (root / "abc").mkdir(parents=True)
    scope.runc_roots.append(str(tmp_path / "run" / "runtime" / "*"))
    assert c.leaks() == []
    (root / "abc" / "state.json").write_text("{}")
    assert c.leaks() == ["runc state %s" % (root / "abc")]
    shutil.rmtree(str(root / "abc"))


def test_state_files_are_reported_but_not_the_image_store(check, tmp_path):
    c, scope = check
    root, run = tmp_path / "root", tmp_path / "run"
    for d in (root / "storage" / "layers" / "x", root / "containers", run / "pods" / "p"):
        d.mkdir(parents=True)
    (root / "storage" / "layers" / "x" / "file").touch()
    (run / "pod-cidr").write_text("10.1.0.0/16")
    (root / "pods" / ".quarantine").mkdir(parents=True)
    (root / "pods" / ".quarantine" / "bad.1").touch()
    scope.state_dirs += [str(root), str(run)]
    assert c.leaks() == []
    (root / "containers" / "c.json").touch()
    (run / "pods" / "p" / "resolv.conf").touch()
    (run / "pods" / "p" / "hosts").touch()
    assert sorted(c.leaks()) == ["state file %s" % (root / "containers" / "c.json"),
                                 "state files in %s: hosts, resolv.conf" % (run / "pods" / "p")]
    scope.state_dirs.clear()


# ---- crashes ----

def test_sanitizer_options_are_kept_and_reports_found(tmp_path):
    env = crashcheck.sanitizer_env({"ASAN_OPTIONS": "detect_leaks=1:log_path=/elsewhere"},
                                   str(tmp_path / "san"))
    opts = env["ASAN_OPTIONS"].split(":")
    assert "detect_leaks=1" in opts and "log_path=/elsewhere" not in opts
    assert "log_path=%s" % (tmp_path / "san" / "report") in opts
    assert "halt_on_error=0" in env["UBSAN_OPTIONS"] and "log_exe_name=1" in env["LSAN_OPTIONS"]
    assert "exitcode=%d" % crashcheck.SANITIZER_EXIT in env["UBSAN_OPTIONS"].split(":")
    assert crashcheck.sanitizer_reports(str(tmp_path / "san")) == []
    (tmp_path / "san" / "report.crisp.123").write_text("ERROR: LeakSanitizer: detected leaks")
    [found] = crashcheck.sanitizer_reports(str(tmp_path / "san"))
    assert "report.crisp.123" in found and "LeakSanitizer" in found
    log = tmp_path / "crisp.log"
    log.write_text("info: a runtime error: from runc is no report\n"
                   "../server/x.c:30:11: runtime error: signed integer overflow\n"
                   "    #0 0x55 in handle_version ../server/x.c:30\n")
    [found] = crashcheck.sanitizer_lines(str(log))
    assert "signed integer overflow" in found and "handle_version" in found
    assert "from runc" not in found


def test_monitor_exit_lines(tmp_path):
    log = tmp_path / "reaper.log"
    log.write_text("1 exit 0\n")
    exits = crashcheck.MonitorExits(str(log))
    with open(str(log), "a") as f:
        f.write("2 exit 0\n3 exit 1\n4 signal 9\n5 signal 11\n6 exit 23\n7 signal 6\n8 exit 66\n")
    found = exits.read()
    assert found[:3] == ["crisp-conmon pid 5 was killed by SIGSEGV",
                         "crisp-conmon pid 6 exited with status 23",
                         "crisp-conmon pid 7 was killed by SIGABRT"]
    assert len(found) == 4 and found[3].startswith("crisp-conmon pid 8 exited with status 66 (")
    assert exits.read() == []


def test_crashed_orphan_monitor_is_seen(tmp_path, crash_check):
    exits = crash_check  # reading here takes the crash off the fixture's list
    if not exits.watched():
        pytest.skip("not running under reaper.py")
    fake = str(tmp_path / "crisp-conmon")
    shutil.copy("/bin/sleep", fake)
    # Double-forked away like a monitor: the orphan comes to the reaper.
    out = subprocess.run(["sh", "-c", '"$0" 600 >/dev/null 2>&1 & echo $!', fake],
                         capture_output=True, text=True, check=True).stdout
    pid = int(out)
    os.kill(pid, signal.SIGSEGV)
    deadline = time.monotonic() + 10
    found = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.05)
        found = exits.read()
    assert found == ["crisp-conmon pid %d was killed by SIGSEGV" % pid]


def test_daemon_end_not_asked_for_is_a_problem(tmp_path):
    d = CrispDaemon(str(tmp_path / "d"))
    try:
        d.start()
        assert d.stop() == 0 and d.problems() == []
        d.start()
        d.kill9()
        assert d.problems() == []
        d.start()
        # SIGUSR1 ends crisp without a core dump (slow here) and no sanitizer catches it (a
        # SIGSEGV would add a report of its own in the ASan build).
        d.proc.send_signal(signal.SIGUSR1)
        d.proc.wait(30)
        [found] = d.problems()
        assert "killed by SIGUSR1, which the harness did not send" in found
        d.ends.clear()
        d.start()
        (tmp_path / "d" / "san").mkdir(exist_ok=True)
        (tmp_path / "d" / "san" / "report.crisp.1").write_text("runtime error: x")
        [found] = d.problems()
        assert "report.crisp.1" in found and "runtime error" in found
        os.unlink(str(tmp_path / "d" / "san" / "report.crisp.1"))
        assert d.cleanup() == []
    finally:
        d.cleanup()
