"""Container and pod statistics: ContainerStats, ListContainerStats (with filters),
PodSandboxStats and ListPodSandboxStats — CPU, memory working set and writable-layer usage of
running containers, read back the way kubelet's summary API and `crictl stats` use them."""
import os
import subprocess
import time

import grpc

from container_harness import (MiB, SLEEPER, cenv, remove_cgroup, rpc_error,  # noqa: F401
                               wait_for)
from cri_client import pb

BUSY = ["sh", "-c", "while :; do :; done"]


def cstats(cenv, cid):
    return cenv.c.call("ContainerStats", pb.ContainerStatsRequest(container_id=cid)).stats


def test_container_stats_of_a_running_container(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "busy", command=BUSY, labels={"app": "busy"})
    time.sleep(1.0)
    assert cenv.exec_sync(cid, ["sh", "-c", "head -c 3000000 /dev/zero > /big"]).exit_code == 0
    s = cstats(cenv, cid)
    assert s.attributes.id == cid and s.attributes.metadata.name == "busy"
    assert dict(s.attributes.labels) == {"app": "busy"}
    now = time.time_ns()
    assert abs(s.cpu.timestamp - now) < 10 * 10**9
    assert s.cpu.usage_core_nano_seconds.value > 300 * 10**6, "1 s busy loop"
    assert s.memory.working_set_bytes.value > 0
    assert s.writable_layer.used_bytes.value >= 3000000
    assert s.writable_layer.inodes_used.value >= 1
    first = s.cpu.usage_core_nano_seconds.value
    time.sleep(0.5)
    assert cstats(cenv, cid).cpu.usage_core_nano_seconds.value > first


def test_memory_working_set_follows_usage(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "mem", command=SLEEPER)
    base = cstats(cenv, cid).memory.working_set_bytes.value
    # /dev/shm of the pod is shared; a file in the writable layer on tmpfs is not, so
    # allocate in a process instead: a shell variable of 20 MB held by a background job.
    # (sleep must not be the subshell's last command: busybox sh would exec it and free x.)
    cenv.exec_sync(cid, ["sh", "-c", "(x=$(head -c 20000000 /dev/zero | tr '\\0' x); "
                                     "sleep 30; echo ${#x}) >/dev/null 2>&1 &"])
    wait_for(lambda: cstats(cenv, cid).memory.working_set_bytes.value > base + 15 * MiB, 10,
             what="working set to grow by ~20 MB")


def test_list_container_stats_filters(cenv):
    pod1 = cenv.run_pod("p1")
    pod2 = cenv.run_pod("p2")
    a = cenv.run(pod1, "a", command=SLEEPER, labels={"app": "x"})
    b = cenv.run(pod1, "b", command=SLEEPER, labels={"app": "y"})
    c = cenv.run(pod2, "c", command=SLEEPER, labels={"app": "x"})
    done = cenv.run(pod2, "done", command=["true"])
    cenv.wait_exit(done)

    def ids(**f):
        req = pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(**f))
        return sorted(s.attributes.id for s in
                      cenv.c.call("ListContainerStats", req).stats)

    assert set(ids()) >= {a, b, c}
    assert ids(id=a) == [a]
    assert ids(pod_sandbox_id=pod1) == sorted([a, b])
    assert ids(label_selector={"app": "x"}) == sorted([a, c])
    assert ids(pod_sandbox_id=pod2, label_selector={"app": "y"}) == []
    for s in cenv.c.call("ListContainerStats", pb.ListContainerStatsRequest()).stats:
        if s.attributes.id in (a, b, c):
            assert s.memory.working_set_bytes.value > 0


def test_container_stats_of_an_unknown_container_is_not_found(cenv):
    err = rpc_error(cstats, cenv, "b" * 64)
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_pod_sandbox_stats(cenv):
    pod = cenv.run_pod(labels={"tier": "web"})
    other = cenv.run_pod("other")
    a = cenv.run(pod, "a", command=BUSY)
    b = cenv.run(pod, "b", command=SLEEPER)
    cenv.run(other, "c", command=SLEEPER)
    time.sleep(1.0)
    s = cenv.c.call("PodSandboxStats", pb.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats
    assert s.attributes.id == pod and s.attributes.metadata.name == "pod"
    assert dict(s.attributes.labels) == {"tier": "web"}
    assert sorted(c.attributes.id for c in s.linux.containers) == sorted([a, b])
    per = {c.attributes.id: c for c in s.linux.containers}
    assert per[a].cpu.usage_core_nano_seconds.value > 300 * 10**6
    assert s.linux.cpu.usage_core_nano_seconds.value >= per[a].cpu.usage_core_nano_seconds.value
    assert s.linux.memory.working_set_bytes.value > 0

    req = pb.ListPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(
        label_selector={"tier": "web"}))
    listed = cenv.c.call("ListPodSandboxStats", req).stats
    assert [x.attributes.id for x in listed] == [pod]
    everything = cenv.c.call("ListPodSandboxStats", pb.ListPodSandboxStatsRequest()).stats
    assert sorted(x.attributes.id for x in everything) == sorted([pod, other])
    err = rpc_error(cenv.c.call, "PodSandboxStats",
                    pb.PodSandboxStatsRequest(pod_sandbox_id="c" * 64))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_pod_stats_come_from_the_pod_cgroup(cenv):
    """With a cgroup parent (kubelet's pod cgroup), the pod's figures are that cgroup's, which
    counts processes no container owns; here a busy process the test puts there."""
    name = "crisp-test-pod-%d" % os.getpid()
    pod = cenv.run_pod("cg", cgroup_parent="/" + name)
    cid = cenv.run(pod, "idle", command=SLEEPER)
    cpuacct = "/sys/fs/cgroup/cpuacct/" + name
    busy = subprocess.Popen(["/usr/bin/python3", "-c",
                             "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        with open(os.path.join(cpuacct, "cgroup.procs"), "w") as f:
            f.write("%d\n" % busy.pid)
        busy.wait(30)
        s = cenv.c.call("PodSandboxStats", pb.PodSandboxStatsRequest(pod_sandbox_id=pod)).stats
        own = s.linux.containers[0].cpu.usage_core_nano_seconds.value
        assert s.linux.cpu.usage_core_nano_seconds.value > own + 10**9
    finally:
        if busy.poll() is None:
            busy.kill()
            busy.wait()
        cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        remove_cgroup(name)
