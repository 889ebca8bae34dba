"""Many calls at once: hundreds of concurrent RPCs of one kind (RunPodSandbox with a real CNI
network, container lifecycles, status and list calls) must neither crash crisp nor corrupt a
record, and must leave nothing behind once everything is removed through CRI.  A kill -9 in
the middle of the crowd, then a restart, must find every record readable.

CRISP_CONCURRENCY scales the crowd (default 200; `make chaos`-style runs use 1000)."""
import concurrent.futures
import os
import subprocess

import grpc
import pytest

from container_harness import SLEEPER, finish_env, make_env, push_extra_images  # noqa: F401
from cri_client import pb
from leakcheck import links
from pod_harness import PLUGIN_DIRS, PodNet, nsfs_mounts_under, pod_config

N = int(os.environ.get("CRISP_CONCURRENCY", "200"))

pytestmark = pytest.mark.skipif(not PLUGIN_DIRS, reason="no CNI plugins installed")


def all_at_once(fn, args, workers=None):
    """Runs fn(arg) for every arg from as many threads; returns [(arg, result|exception)]."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or len(args)) as ex:
        futs = [(a, ex.submit(fn, a)) for a in args]
        out = []
        for a, f in futs:
            try:
                out.append((a, f.result()))
            except Exception as e:  # noqa: BLE001 - reported by the caller
                out.append((a, e))
        return out


def failures(results):
    return ["%s: %s" % (a, r) for a, r in results if isinstance(r, Exception)]


def problems_in_log(daemon):
    bad = ("quarantine", "unusable", "corrupt", "CRITICAL", "assertion", "tcache", "double free")
    with open(daemon.log_path, errors="replace") as f:
        return [line.strip() for line in f if any(b in line for b in bad)]


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


@pytest.fixture
def cninet(crisp_factory):
    """A daemon with a CNI bridge network of its own (a /22: room for 1000 pods)."""
    links_before = links()
    d = crisp_factory(start=False)
    net = PodNet(d.tmp)
    third = int(net.subnet.split(".")[2]) & ~3
    net.subnet = "10.89.%d.0/22" % third
    net.conflist["plugins"][0]["ipam"]["ranges"] = [[{"subnet": net.subnet}]]
    net.install(d.cni_dir)
    with open(os.path.join(d.conf_dir, "50-cni.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS))
    d.start()
    yield d, net
    if d.proc is None:
        d.start()
    d.remove_everything()
    d.stop()
    leaks = ["nsfs pin %s" % m for m in nsfs_mounts_under(d.tmp)]
    ports = subprocess.run(["ip", "-o", "link", "show", "master", net.bridge],
                           capture_output=True, text=True).stdout.strip()
    if ports:
        leaks.append("veths on %s: %d" % (net.bridge, len(ports.splitlines())))
    leaks += ["IP allocation %s" % a for a in net.allocations()]
    subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
    leaks += ["link %s" % link for link in links() - links_before]
    assert not leaks, "leaked: %s" % leaks[:20]


def test_hundreds_of_pods_at_once(cninet):
    d, net = cninet
    c = d.client

    def run(i):
        return c.call("RunPodSandbox", pb.RunPodSandboxRequest(
            config=pod_config("crowd-%d" % i)), timeout=600).pod_sandbox_id

    results = all_at_once(run, list(range(N)))
    assert d.proc.poll() is None, "crisp died:\n" + d.log_tail()
    assert not failures(results), failures(results)[:5]
    ids = {r for _, r in results}
    assert len(ids) == N
    # Each pod has its own address, and each retry of a name gets the same pod back.
    ips = set()
    for pod in ids:
        st = c.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
        assert st.state == pb.SANDBOX_READY
        ips.add(st.network.ip)
    assert len(ips) == N and "" not in ips
    assert len(net.allocations()) == N
    again = all_at_once(run, list(range(0, N, 10)))
    assert {r for _, r in again} <= ids

    # Killed while nothing is in flight, every record reads back.
    d.kill9()
    d.start()
    assert not problems_in_log(d), problems_in_log(d)[:5]
    listed = d.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert sorted(p.id for p in listed) == sorted(ids)
    assert all(p.state == pb.SANDBOX_READY for p in listed)

    c = d.client

    def stop_and_remove(pod):
        c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=600)
        c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=600)

    results = all_at_once(stop_and_remove, sorted(ids))
    assert d.proc.poll() is None, "crisp died:\n" + d.log_tail()
    assert not failures(results), failures(results)[:5]
    assert not c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert net.allocations() == []
    print("crisp peak RSS after %d pods: %d KiB" % (N, vm_hwm_kib(d.proc.pid)))


def test_kill_in_the_middle_of_a_crowd_of_pods(cninet):
    """SIGKILL while a hundred RunPodSandbox calls are in flight: after the restart every
    record is readable, the retried calls succeed, and removal leaves nothing."""
    d, net = cninet
    c = d.client
    n = max(N // 2, 10)
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=n)
    futs = [ex.submit(c.call, "RunPodSandbox",
                      pb.RunPodSandboxRequest(config=pod_config("mid-%d" % i)), 600)
            for i in range(n)]
    # Kill once some have finished and others are still running.
    done = 0
    for f in concurrent.futures.as_completed(futs):
        done += 1
        if done >= n // 4:
            break
    d.kill9()
    ex.shutdown(wait=True)
    d.start()
    assert not problems_in_log(d), problems_in_log(d)[:5]
    c = d.client
    results = all_at_once(lambda i: c.call("RunPodSandbox", pb.RunPodSandboxRequest(
        config=pod_config("mid-%d" % i)), timeout=600).pod_sandbox_id, list(range(n)))
    assert not failures(results), failures(results)[:5]
    listed = c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert len(listed) == n and all(p.state == pb.SANDBOX_READY for p in listed)
    assert len(net.allocations()) == n


@pytest.fixture
def crowd_env(crisp_factory, registry, tmp_path):
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir)
    yield env
    leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks[:20]


def test_container_lifecycles_at_once(crowd_env):
    env = crowd_env
    c = env.c
    n = max(N // 2, 10)
    pod = env.run_pod()

    def create(i):
        return env.create(pod, "w%d" % i, command=SLEEPER)

    created = all_at_once(create, list(range(n)))
    assert not failures(created), failures(created)[:5]
    cids = [r for _, r in created]
    # Created at once on a fresh daemon, every init waiting for its start runs from the one
    # sealed copy of runc that the first create made (container-runtime-copy.c).
    exes = {os.stat("/proc/%d/exe" % env.pid(cid)).st_ino for cid in cids}
    assert len(exes) == 1 and os.readlink("/proc/%d/exe" % env.pid(cids[0])).startswith(
        "/memfd:runc"), exes
    results = all_at_once(lambda cid: env.start(cid), cids)
    assert not failures(results), failures(results)[:5]
    # Five times as many status and list calls as there are containers, all at once.
    reads = all_at_once(
        lambda i: (env.status(cids[i % n]) if i % 2 else
                   c.call("ListContainers", pb.ListContainersRequest())), list(range(5 * n)),
        workers=min(5 * n, 1000))
    assert not failures(reads), failures(reads)[:5]
    assert all(r.status.state == pb.CONTAINER_RUNNING for i, r in reads if i % 2)
    execs = all_at_once(lambda cid: env.exec_sync(cid, ["sh", "-c", "echo $HOSTNAME"]), cids)
    assert not failures(execs), failures(execs)[:5]
    assert all(r.exit_code == 0 for _, r in execs)
    assert env.d.proc.poll() is None, "crisp died:\n" + env.d.log_tail()
    stopped = all_at_once(lambda cid: env.stop(cid, timeout=0), cids)
    assert not failures(stopped), failures(stopped)[:5]
    assert all(env.status(cid).status.exit_code == 137 for cid in cids)
    removed = all_at_once(env.remove, cids)
    assert not failures(removed), failures(removed)[:5]
    assert not env.list()
    assert not problems_in_log(env.d), problems_in_log(env.d)[:5]
    print("crisp peak RSS after %d containers: %d KiB" % (n, vm_hwm_kib(env.d.proc.pid)))


def test_a_thousand_cheap_calls_at_once(crisp):
    """1000 concurrent calls of each cheap kind: every one answered, crisp still serving."""
    c = crisp.client
    for name in ("Version", "Status", "ListPodSandbox", "ListContainers", "ListImages",
                 "ImageFsInfo"):
        res = all_at_once(lambda _: c.call(name, timeout=120), list(range(1000)), workers=200)
        assert not failures(res), "%s: %s" % (name, failures(res)[:3])
    assert crisp.proc.poll() is None
    assert c.call("Version").runtime_name == "crisp"
