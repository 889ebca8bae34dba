"""RemoveContainer returns once the removal is decided and durable; the slow rest (the
writable layer, the run directory, the unmount) runs in the background, and a crisp killed
before it finished ends it at the next start.  A container that wrote many files into its
writable layer makes that rest take seconds."""
import os

from container_harness import SLEEPER, cenv, monitors, rpc_error, wait_for  # noqa: F401
from cri_client import pb

# Writes N empty files into /many of the writable layer, then says so and sleeps.
FILLER = ("mkdir /many && cd /many && seq 1 %d | xargs touch && echo filled && "
          "exec sleep 3600")


def trash(d):
    path = os.path.join(d.root, "containers", ".trash")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def run_filled(cenv, pod, name, files):
    cid = cenv.run(pod, name, command=["sh", "-c", FILLER % files])
    log = os.path.join(cenv.pods[pod].log_directory, "%s_0.log" % name)
    wait_for(lambda: os.path.exists(log) and "filled" in open(log).read(), 120,
             what="the container to write %d files" % files)
    return cid


def mounts_of(cid):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if cid in line.split()[4]]


def test_remove_returns_before_the_layer_is_deleted_and_a_kill_is_finished_at_start(cenv):
    pod = cenv.run_pod()
    cid = run_filled(cenv, pod, "filled", 150000)
    upper = os.path.join(cenv.d.root, "containers", cid, "upper", "many")
    assert len(os.listdir(upper)) == 150000

    cenv.remove(cid)
    # Decided and durable: gone from every list and status, its record in the trash ...
    assert cid not in [c.id for c in cenv.list()]
    err = rpc_error(cenv.status, cid)
    assert err.code().name == "NOT_FOUND"
    assert not os.path.exists(os.path.join(cenv.d.root, "containers", cid))
    assert trash(cenv.d) == [cid], "the removal finished within the call"
    # ... and its name free for a new container at once.
    again = cenv.run(pod, "filled", command=SLEEPER)
    assert again != cid and cenv.state(again) == pb.CONTAINER_RUNNING

    cenv.d.kill9()
    assert trash(cenv.d) == [cid], "the background removal finished before the kill"
    cenv.d.start()
    wait_for(lambda: not trash(cenv.d), 120, what="the interrupted removal to finish")
    assert [c.id for c in cenv.list()] == [again]
    assert not os.path.exists(os.path.join(cenv.d.run_root, "containers", cid))
    assert not mounts_of(cid)
    with open(cenv.d.log_path) as f:
        assert "container '%s': finishing an interrupted removal" % cid in f.read()
    # The teardown's leak check finds nothing of either container left.


def test_sigterm_waits_for_the_removals_in_progress(cenv):
    pod = cenv.run_pod()
    cid = run_filled(cenv, pod, "filled", 30000)
    cenv.remove(cid)
    assert cenv.d.stop() == 0
    assert trash(cenv.d) == []
    assert not os.path.exists(os.path.join(cenv.d.run_root, "containers", cid))
    assert not mounts_of(cid)


def test_remove_then_stop_pod_waits_for_the_monitor(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "c", command=SLEEPER)
    cenv.stop(cid, timeout=0)
    cenv.remove(cid)
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    # Its monitor, which runs the runtime's delete (the container's cgroup with it) before it
    # exits, is gone when the pod's stop returns.
    assert not monitors(cid)
    runtimes = os.path.join(cenv.d.run_root, "runtime")
    for handler in os.listdir(runtimes):
        assert cid not in os.listdir(os.path.join(runtimes, handler))
