"""UpdatePodSandboxResources, the in-place resize of a pod: the kubelet resizes the pod's cgroup
(the cgroup parent it made) itself and then reports the pod-level overhead and resources; crisp
checks them as UpdateContainerResources checks its resources, keeps them in the pod's config
and record, reports them in PodSandboxStatus and leaves the kubelet's cgroup alone, as
containerd and CRI-O do (docs/containers.md).  The test plays the kubelet's part on a real
cgroup."""
import json
import os

import grpc

from container_harness import (SLEEPER, MiB, cenv, cgroups_of, remove_cgroup,  # noqa: F401
                               rpc_error)
from cri_client import pb

CGROUP_ROOT = "/sys/fs/cgroup"


def cgroup_v2():
    return os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.controllers"))


class KubeletPodCgroup:
    """A pod cgroup made and resized the way the kubelet does it (cgroupfs driver), at a path
    of its own; remove() takes it away again once the pod is gone."""

    def __init__(self, daemon, tag):
        self.name = "crisp-test-%s-%d" % (tag, os.getpid())
        self.parent = "/" + self.name
        daemon.cgroup_names.append(self.parent)  # the leak check wants it gone at the end
        for d in self.dirs().values():
            os.makedirs(d, exist_ok=True)

    def dirs(self):
        if cgroup_v2():
            return {"cpu": os.path.join(CGROUP_ROOT, self.name),
                    "memory": os.path.join(CGROUP_ROOT, self.name)}
        cpu = "cpu" if os.path.isdir(os.path.join(CGROUP_ROOT, "cpu")) else "cpu,cpuacct"
        return {"cpu": os.path.join(CGROUP_ROOT, cpu, self.name),
                "memory": os.path.join(CGROUP_ROOT, "memory", self.name)}

    def files(self):
        d = self.dirs()
        if cgroup_v2():
            return {"weight": (d["cpu"], "cpu.weight"), "max": (d["cpu"], "cpu.max"),
                    "memory": (d["memory"], "memory.max")}
        return {"shares": (d["cpu"], "cpu.shares"), "quota": (d["cpu"], "cpu.cfs_quota_us"),
                "period": (d["cpu"], "cpu.cfs_period_us"),
                "memory": (d["memory"], "memory.limit_in_bytes")}

    def resize(self, shares, quota, period, memory):
        """What the kubelet writes into the pod cgroup before it calls the runtime."""
        if cgroup_v2():
            weight = 1 + ((shares - 2) * 9999) // 262142
            values = {"weight": str(weight), "max": "%d %d" % (quota, period),
                      "memory": str(memory)}
        else:
            values = {"shares": str(shares), "period": str(period), "quota": str(quota),
                      "memory": str(memory)}
        for key, value in values.items():
            d, f = self.files()[key]
            with open(os.path.join(d, f), "w") as fh:
                fh.write(value)

    def read(self):
        out = {}
        for key, (d, f) in self.files().items():
            with open(os.path.join(d, f)) as fh:
                out[key] = fh.read().strip()
        return out

    def remove(self):
        assert not remove_cgroup(self.name), "pod cgroup %s still busy" % self.name


def res(**kw):
    return pb.LinuxContainerResources(**kw)


def resize(c, pod, overhead=None, resources=None):
    req = pb.UpdatePodSandboxResourcesRequest(pod_sandbox_id=pod)
    if overhead is not None:
        req.overhead.CopyFrom(overhead)
    if resources is not None:
        req.resources.CopyFrom(resources)
    return c.call("UpdatePodSandboxResources", req)


def pod_info(c, pod):
    resp = c.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod,
                                                                 verbose=True))
    return json.loads(resp.info["info"])


def as_info(r):
    """A LinuxContainerResources as PodSandboxStatus's verbose info spells it."""
    out = {f.name: v for f, v in r.ListFields()
           if f.name not in ("hugepage_limits", "unified")}
    out["hugepage_limits"] = [{"page_size": h.page_size, "limit": h.limit}
                              for h in r.hugepage_limits]
    out["unified"] = dict(r.unified)
    return out


def run_pod_with(cenv, name, cgroup_parent="", overhead=None, resources=None):
    cfg = cenv.pod_config(name, cgroup_parent=cgroup_parent)
    if overhead is not None:
        cfg.linux.overhead.CopyFrom(overhead)
    if resources is not None:
        cfg.linux.resources.CopyFrom(resources)
    os.makedirs(cfg.log_directory, exist_ok=True)
    pod = cenv.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg),
                      timeout=60).pod_sandbox_id
    cenv.pods[pod] = cfg
    return pod


# The kubelet's figures for a pod of one container asking 1m CPU (shares 2, the minimum),
# with a RuntimeClass overhead of 1m and 16 MiB: the pod cgroup gets shares 2 again, not the
# 4 that resources + overhead would make, since the kubelet converts through milli-CPUs.
OVERHEAD = res(cpu_shares=2, cpu_quota=1000, cpu_period=100000,
               memory_limit_in_bytes=16 * MiB)
RESOURCES = res(cpu_shares=2, cpu_quota=50000, cpu_period=100000,
                memory_limit_in_bytes=80 * MiB, hugepage_limits=[pb.HugepageLimit(
                    page_size="2MB", limit=0)], unified={"memory.oom.group": "1"})
KUBELET_POD_CGROUP = dict(shares=2, quota=51000, period=100000, memory=96 * MiB)


def test_resize_is_kept_reported_and_leaves_the_kubelets_cgroup(cenv):
    cg = KubeletPodCgroup(cenv.d, "resize")
    try:
        first = res(cpu_shares=2, cpu_quota=25000, cpu_period=100000,
                    memory_limit_in_bytes=32 * MiB)
        pod = run_pod_with(cenv, "rs", cg.parent, overhead=OVERHEAD, resources=first)
        info = pod_info(cenv.c, pod)
        assert info["overhead"] == as_info(OVERHEAD)
        assert info["resources"] == as_info(first)
        cid = cenv.run(pod, "app", command=SLEEPER)
        assert cgroups_of(cenv.pid(cid))["memory"].startswith(cg.dirs()["memory"] + "/")

        cg.resize(**KUBELET_POD_CGROUP)
        kubelets = cg.read()
        resize(cenv.c, pod, OVERHEAD, RESOURCES)
        assert cg.read() == kubelets, "crisp rewrote the kubelet's pod cgroup"
        info = pod_info(cenv.c, pod)
        assert info["overhead"] == as_info(OVERHEAD)
        assert info["resources"] == as_info(RESOURCES)
        assert info["resources"]["memory_limit_in_bytes"] == 80 * MiB

        cenv.d.restart()
        assert pod_info(cenv.c, pod)["resources"] == as_info(RESOURCES)
        cenv.d.kill9()
        cenv.d.start()
        info = pod_info(cenv.c, pod)
        assert info["resources"] == as_info(RESOURCES)
        assert info["overhead"] == as_info(OVERHEAD)
        assert cg.read() == kubelets
        assert cenv.state(cid) == pb.CONTAINER_RUNNING

        # A later resize replaces both; one without an overhead has none.
        smaller = res(cpu_shares=2, cpu_quota=20000, cpu_period=100000,
                      memory_limit_in_bytes=40 * MiB)
        resize(cenv.c, pod, None, smaller)
        info = pod_info(cenv.c, pod)
        assert info["overhead"] is None and info["resources"] == as_info(smaller)
    finally:
        cenv.d.remove_everything()
        cg.remove()


def test_resize_of_a_pod_without_cgroup_parent_is_kept_too(cenv):
    pod = run_pod_with(cenv, "plain")
    assert pod_info(cenv.c, pod)["resources"] is None
    resize(cenv.c, pod, OVERHEAD, RESOURCES)
    cenv.d.restart()
    info = pod_info(cenv.c, pod)
    assert info["overhead"] == as_info(OVERHEAD) and info["resources"] == as_info(RESOURCES)


BAD = [
    (res(cpu_shares=1), None, "overhead: cpu_shares 1 is outside 2..262144"),
    (None, res(cpu_shares=262145), "resources: cpu_shares 262145 is outside 2..262144"),
    (None, res(memory_limit_in_bytes=-1), "resources: memory_limit_in_bytes -1 is negative"),
    (res(cpu_period=10), None, "overhead: cpu_period 10 is outside 1000..1000000"),
    (None, res(cpu_quota=5), "resources: cpu_quota 5 is below 1000"),
    (None, res(cpuset_cpus="0-"), "resources: cpuset_cpus '0-' is not a CPU list"),
    (None, res(unified={"cgroup.procs": "1"}), "'cgroup.procs' is not a cgroup file name"),
    (None, res(oom_score_adj=5000), "resources: oom_score_adj 5000 is outside -1000..1000"),
    (None, res(hugepage_limits=[pb.HugepageLimit(page_size="2M", limit=1)]), "'2M'"),
]


def test_bad_resizes_get_clear_errors_and_change_nothing(cenv):
    pod = run_pod_with(cenv, "bad", overhead=OVERHEAD, resources=RESOURCES)
    record = os.path.join(cenv.d.root, "pods", pod, "pod.json")
    with open(record, "rb") as f:
        before = f.read()
    info = pod_info(cenv.c, pod)
    for overhead, resources, needle in BAD:
        err = rpc_error(resize, cenv.c, pod, overhead, resources)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (needle, err.details())
        assert needle in err.details(), err.details()
    err = rpc_error(resize, cenv.c, "f" * 64, None, RESOURCES)
    assert err.code() == grpc.StatusCode.NOT_FOUND and "f" * 64 in err.details()
    err = rpc_error(resize, cenv.c, "", None, RESOURCES)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "pod_sandbox_id" in err.details()
    assert pod_info(cenv.c, pod) == info
    with open(record, "rb") as f:
        assert f.read() == before

    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    err = rpc_error(resize, cenv.c, pod, None, res(memory_limit_in_bytes=64 * MiB))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "not ready" in err.details()
    assert pod_info(cenv.c, pod)["resources"] == as_info(RESOURCES)
    assert cenv.d.proc.poll() is None


def test_run_pod_with_bad_pod_resources_is_refused(cenv):
    err = rpc_error(run_pod_with, cenv, "badrun", overhead=res(cpu_shares=300000))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "linux.overhead: cpu_shares 300000" in err.details()
    assert not cenv.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
