"""Records that a crash (or a disk) left unreadable: crisp reports them and goes on, without a
GLib assertion failure.  A container whose record is truncated or garbage is quarantined for a
human to look at, and what it named on the host (its monitor, the container, the rootfs mount,
the run directory) is released; a container whose first record was never written (killed
during that write) is removed altogether, run directory included."""
import glob
import os
import secrets

from container_harness import SLEEPER, alive, cenv, monitors  # noqa: F401
from cri_client import pb


def daemon_log(d):
    with open(d.log_path, errors="replace") as f:
        return f.read()


def assert_no_glib_criticals(d):
    log = daemon_log(d)
    bad = [line for line in log.splitlines() if "CRITICAL" in line or "assertion" in line]
    assert not bad, "GLib assertion failures in crisp's log:\n%s" % "\n".join(bad)


def record_path(d, cid):
    return os.path.join(d.root, "containers", cid, "container.json")


def run_dir(d, cid):
    return os.path.join(d.run_root, "containers", cid)


def mounted(needle):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if needle in line.split()[4]]


def corrupt_and_restart(cenv, contents):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "victim", command=SLEEPER)
    keep = cenv.run(pod, "bystander", command=SLEEPER)
    pid = cenv.pid(cid)
    assert monitors(cid) and mounted(cid) and os.path.isdir(run_dir(cenv.d, cid))
    cenv.d.kill9()
    with open(record_path(cenv.d, cid), "rb") as f:
        whole = f.read()
    with open(record_path(cenv.d, cid), "wb") as f:
        f.write(contents(whole))
    cenv.d.start()
    return pod, cid, keep, pid


def check_released(cenv, cid, pid):
    d = cenv.d
    assert_no_glib_criticals(d)
    assert cid not in [c.id for c in cenv.list()]
    log = daemon_log(d)
    assert "containers: %s/containers/%s:" % (d.root, cid) in log
    assert "its record was lost; released its monitor" in log
    quarantined = glob.glob(os.path.join(d.root, "containers", ".quarantine", cid + ".*"))
    assert len(quarantined) == 1, "not quarantined: %s" % quarantined
    assert os.path.exists(os.path.join(quarantined[0], "container.json"))
    assert not os.path.exists(os.path.join(d.root, "containers", cid))
    assert not os.path.exists(run_dir(d, cid)), "run directory left behind"
    assert not monitors(cid), "monitor left behind"
    assert not mounted(cid), "rootfs mount left behind"
    assert not alive(pid), "the container's process is still running"


def test_truncated_container_record(cenv):
    pod, cid, keep, pid = corrupt_and_restart(cenv, lambda whole: whole[:len(whole) // 2])
    check_released(cenv, cid, pid)
    # The rest is untouched and managed.
    assert cenv.state(keep) == pb.CONTAINER_RUNNING
    r = cenv.exec_sync(keep, ["echo", "ok"])
    assert (r.stdout, r.exit_code) == (b"ok\n", 0)


def test_garbage_container_records(cenv):
    for contents in (b"{", b"\x00\xff not json", b"[1, 2]", b"null"):
        pod, cid, keep, pid = corrupt_and_restart(cenv, lambda whole: contents)
        check_released(cenv, cid, pid)
        cenv.remove(keep)
        cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                    timeout=60)


def test_an_empty_container_record_counts_as_never_written(cenv):
    """Only a power loss leaves a record empty (its rename reached the disk, its data did
    not): nothing it said ever counted, so the container is released and its directory
    removed, as for a record never written, and nothing is quarantined."""
    pod, cid, keep, pid = corrupt_and_restart(cenv, lambda whole: b"")
    d = cenv.d
    assert_no_glib_criticals(d)
    assert cid not in [c.id for c in cenv.list()]
    log = daemon_log(d)
    assert "containers/%s: record 'container.json' is empty" % cid in log
    assert "its record was lost; released its monitor" in log
    assert not glob.glob(os.path.join(d.root, "containers", ".quarantine", cid + ".*"))
    assert not os.path.exists(os.path.join(d.root, "containers", cid))
    assert not os.path.exists(run_dir(d, cid)), "run directory left behind"
    assert not monitors(cid), "monitor left behind"
    assert not mounted(cid), "rootfs mount left behind"
    assert not alive(pid), "the container's process is still running"
    assert cenv.state(keep) == pb.CONTAINER_RUNNING


def test_first_record_never_written(cenv):
    """What a kill during CreateContainer's first record write leaves: the store directory with
    the writable layer's directories and the temporary file, and the run directory."""
    d = cenv.d
    pod = cenv.run_pod()
    keep = cenv.run(pod, "bystander", command=SLEEPER)
    d.kill9()
    cid = secrets.token_hex(32)
    obj = os.path.join(d.root, "containers", cid)
    for sub in ("upper", "work"):
        os.makedirs(os.path.join(obj, sub))
    with open(os.path.join(obj, ".container.json.tmp4242"), "w") as f:
        f.write('{"version":1,"pod_id":"')
    os.makedirs(os.path.join(run_dir(d, cid), "rootfs"))
    d.start()
    assert_no_glib_criticals(d)
    assert "containers: %s/containers/%s: no record 'container.json', removed" % (d.root, cid) \
        in daemon_log(d)
    assert not os.path.exists(obj)
    assert not glob.glob(os.path.join(d.root, "containers", ".quarantine", cid + ".*"))
    assert not os.path.exists(run_dir(d, cid)), "run directory left behind"
    assert [c.id for c in cenv.list()] == [keep]
    assert cenv.state(keep) == pb.CONTAINER_RUNNING


def test_truncated_pod_record(cenv):
    """A pod whose record is cut short is quarantined without assertion failures, and its
    namespace pins and run directory (what its id names) are swept."""
    d = cenv.d
    victim = cenv.run_pod("victim")
    keep = cenv.run_pod("bystander")
    path = os.path.join(d.root, "pods", victim, "pod.json")
    d.kill9()
    with open(path, "rb") as f:
        whole = f.read()
    with open(path, "wb") as f:
        f.write(whole[:len(whole) // 2])
    d.start()
    assert_no_glib_criticals(d)
    pods = d.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [p.id for p in pods] == [keep]
    assert len(glob.glob(os.path.join(d.root, "pods", ".quarantine", victim + ".*"))) == 1
    assert not glob.glob(os.path.join(d.run_root, "ns", victim + "-*"))
    assert not os.path.exists(os.path.join(d.run_root, "pods", victim))
    assert not mounted(victim)
