"""CRI metrics without cAdvisor: ListMetricDescriptors and ListPodSandboxMetrics, the way a
kubelet with PodAndContainerStatsFromCRI reads them for /metrics/cadvisor. Values are checked
against what the test reads itself: the container's and the pod's cgroup files, and
/proc/<pid>/net/dev of a process in the pod's network namespace after the test sent it
traffic over the test's own CNI bridge (in the test's network namespace)."""
import os
import socket
import subprocess
import time

import pytest

from container_harness import (MiB, SLEEPER, ContainerEnv, cgroups_of, finish_env,
                               push_extra_images, wait_for)
from cri_client import pb
from image_harness import registries_conf
from pod_harness import PLUGIN_DIRS, PodNet

pytestmark = pytest.mark.skipif(not PLUGIN_DIRS, reason="no CNI plugins installed")

BUSY = ["sh", "-c", "while :; do :; done"]
BASE_KEYS = ["id", "name", "image"]
NET_FIELDS = {  # metric -> column of /proc/net/dev (after the interface name)
    "container_network_receive_bytes_total": 0,
    "container_network_receive_packets_total": 1,
    "container_network_receive_errors_total": 2,
    "container_network_receive_packets_dropped_total": 3,
    "container_network_transmit_bytes_total": 8,
    "container_network_transmit_packets_total": 9,
    "container_network_transmit_errors_total": 10,
    "container_network_transmit_packets_dropped_total": 11,
}


@pytest.fixture
def menv(crisp_factory, registry, tmp_path):
    """A ContainerEnv whose daemon also has a CNI bridge network of its own, so pods can have
    their own network namespace (ContainerEnv's own pods use the host's)."""
    images = push_extra_images(registry)
    d = crisp_factory(start=False)
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(registry.host))
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    with open(os.path.join(d.conf_dir, "50-cni.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS))
    d.start()
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = ContainerEnv(d, registry, images, logdir)
    env.net = net
    yield env
    leaks = finish_env(env)
    subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
    assert not leaks, "leaked: %s" % leaks


def run_pod(env, name, cgroup_parent=""):
    """A pod with its own network namespace on the test's bridge."""
    cfg = env.pod_config(name, cgroup_parent=cgroup_parent)
    cfg.linux.security_context.namespace_options.network = pb.POD
    os.makedirs(cfg.log_directory, exist_ok=True)
    pod_id = env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg),
                        timeout=60).pod_sandbox_id
    env.pods[pod_id] = cfg
    return pod_id


def descriptors(env):
    resp = env.c.call("ListMetricDescriptors", pb.ListMetricDescriptorsRequest())
    return {d.name: d for d in resp.descriptors}


def pod_metrics(env):
    resp = env.c.call("ListPodSandboxMetrics", pb.ListPodSandboxMetricsRequest(), timeout=60)
    return {p.pod_sandbox_id: p for p in resp.pod_metrics}


def series(metrics, descs):
    """{(name, extra label values): value} of a list of Metric; checks each against its
    descriptor on the way."""
    out = {}
    for m in metrics:
        assert m.name in descs, "no descriptor for %s" % m.name
        assert len(m.label_values) == len(descs[m.name].label_keys), m
        assert m.timestamp == 0, "gathered live: the protocol wants 0"
        key = (m.name, tuple(m.label_values[len(BASE_KEYS):]))
        assert key not in out, "%s twice" % (key,)
        out[key] = m.value.value
    return out


def base_labels(metrics):
    return {tuple(m.label_values[:len(BASE_KEYS)]) for m in metrics}


def cgroup_dirs(pid):
    """(cpu accounting dir, memory dir, pids dir, v2) of PID's cgroup."""
    paths = cgroups_of(pid)
    if "cpuacct" in paths or "cpu,cpuacct" in paths:
        acct = paths.get("cpuacct") or paths["cpu,cpuacct"]
        return acct, paths["memory"], paths.get("pids"), False
    unified = paths["unified"]
    return unified, unified, unified, True


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def cpu_ns(acct, v2):
    if not v2:
        return read_int(os.path.join(acct, "cpuacct.usage"))
    with open(os.path.join(acct, "cpu.stat")) as f:
        stat = dict(line.split() for line in f if line.strip())
    return int(stat["usage_usec"]) * 1000


def memory_usage(mem, v2):
    return read_int(os.path.join(mem, "memory.current" if v2 else "memory.usage_in_bytes"))


def net_dev(pid):
    """{interface: [16 counters]} of /proc/PID/net/dev, without lo."""
    out = {}
    with open("/proc/%d/net/dev" % pid) as f:
        for line in f.read().splitlines()[2:]:
            name, _, counters = line.partition(":")
            if name.strip() != "lo":
                out[name.strip()] = [int(x) for x in counters.split()]
    return out


# ---- descriptors ----

def test_descriptors_describe_every_metric_returned(menv):
    descs = descriptors(menv)
    assert descs == descriptors(menv), "descriptors must not change"
    for d in descs.values():
        assert list(d.label_keys[:3]) == BASE_KEYS and d.help
        # the kubelet appends these itself: a runtime that sent them would break its metrics
        assert not {"namespace", "pod", "container"} & set(d.label_keys)
    assert list(descs["container_cpu_usage_seconds_total"].label_keys) == BASE_KEYS + ["cpu"]
    assert list(descs["container_memory_failures_total"].label_keys) == \
        BASE_KEYS + ["failure_type", "scope"]
    assert list(descs["container_network_receive_bytes_total"].label_keys) == \
        BASE_KEYS + ["interface"]
    for name in ("container_memory_working_set_bytes", "container_memory_rss",
                 "container_memory_cache", "container_oom_events_total", "container_processes",
                 "container_threads", "container_fs_usage_bytes", "container_last_seen",
                 "container_spec_memory_limit_bytes", "container_start_time_seconds"):
        assert name in descs

    pod = run_pod(menv, "desc")
    menv.run(pod, "c", command=SLEEPER)
    got = pod_metrics(menv)[pod]
    names = set()
    for metrics in [got.metrics] + [c.metrics for c in got.container_metrics]:
        series(metrics, descs)
        for m in metrics:
            names.add(m.name)
            # cAdvisor's exceptions: a counter without _total, a gauge with it
            counter = m.name.endswith("_total") != (m.name in (
                "container_memory_failcnt", "container_fs_inodes_total"))
            assert (m.metric_type == pb.COUNTER) == counter, m.name
    assert names >= {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
                     "container_network_receive_bytes_total", "container_fs_usage_bytes",
                     "container_processes", "container_last_seen"}


def test_no_pods_is_an_empty_list(menv):
    assert pod_metrics(menv) == {}


# ---- values against the cgroup files ----

def test_container_values_agree_with_its_cgroup(menv):
    pod = run_pod(menv, "vals")
    cid = menv.run(pod, "busy", command=BUSY)
    # 20 MB held by a background subshell (not the shell's last command: busybox would exec)
    assert menv.exec_sync(cid, ["sh", "-c", "(x=$(head -c 20000000 /dev/zero | tr '\\0' x); "
                                            "sleep 3600; echo ${#x}) >/dev/null 2>&1 &"]
                          ).exit_code == 0
    assert menv.exec_sync(cid, ["sh", "-c", "head -c 3000000 /dev/zero > /big"]).exit_code == 0
    acct, mem, pids, v2 = cgroup_dirs(menv.pid(cid))
    wait_for(lambda: cpu_ns(acct, v2) > 2 * 10**9, 20, what="2 s of CPU")
    wait_for(lambda: memory_usage(mem, v2) > 20 * MiB, 20, what="20 MB allocated")
    descs = descriptors(menv)

    cpu_before, mem_before = cpu_ns(acct, v2), memory_usage(mem, v2)
    got = pod_metrics(menv)[pod]
    cpu_after, mem_after = cpu_ns(acct, v2), memory_usage(mem, v2)
    procs_file = os.path.join(pids or mem, "cgroup.procs")
    with open(procs_file) as f:
        procs = len(f.read().split())

    assert [c.container_id for c in got.container_metrics] == [cid]
    cm = got.container_metrics[0].metrics
    info = menv.pods[pod].metadata
    assert base_labels(cm) == {(cid, "k8s_busy_%s_%s_%s_0" % (info.name, info.namespace, info.uid),
                                menv.busybox)}
    s = series(cm, descs)
    cpu = s[("container_cpu_usage_seconds_total", ("total",))]
    assert cpu_before // 10**9 <= cpu <= cpu_after // 10**9, "whole seconds of cpuacct.usage"
    user = s[("container_cpu_user_seconds_total", ())]
    system = s[("container_cpu_system_seconds_total", ())]
    assert user + system <= cpu + 2
    usage = s[("container_memory_usage_bytes", ())]
    assert min(mem_before, mem_after) - 4 * MiB <= usage <= max(mem_before, mem_after) + 4 * MiB
    assert usage > 20 * MiB
    assert 15 * MiB < s[("container_memory_working_set_bytes", ())] <= usage
    assert s[("container_memory_rss", ())] > 15 * MiB
    assert s[("container_memory_max_usage_bytes", ())] >= usage - 4 * MiB
    faults = s[("container_memory_failures_total", ("pgfault", "hierarchy"))]
    assert faults >= s[("container_memory_failures_total", ("pgfault", "container"))] > 0
    assert s[("container_oom_events_total", ())] == 0
    assert s[("container_processes", ())] == procs
    assert s[("container_threads", ())] >= procs
    assert s[("container_spec_memory_limit_bytes", ())] == 0  # no limit was asked for
    fs = [k for k in s if k[0] == "container_fs_usage_bytes"]
    assert len(fs) == 1 and fs[0][1][0], "one device, named: %s" % fs
    assert s[fs[0]] >= 3000000
    now = time.time()
    assert now - 120 < s[("container_start_time_seconds", ())] <= now
    assert now - 60 < s[("container_last_seen", ())] <= now + 1

    time.sleep(1.2)
    again = series(pod_metrics(menv)[pod].container_metrics[0].metrics, descs)
    assert again[("container_cpu_usage_seconds_total", ("total",))] >= cpu, "a counter"


def test_a_memory_limit_and_a_quota_are_the_spec(menv):
    pod = run_pod(menv, "spec")
    res = pb.LinuxContainerResources(memory_limit_in_bytes=64 * MiB, cpu_period=100000,
                                     cpu_quota=50000, cpu_shares=512)
    cfg = menv.config("limited", command=SLEEPER, resources=res)
    cfg.image.user_specified_image = "busybox:as-typed"  # a kubelet >= 1.28 sends both
    cid = menv.create(pod, config=cfg)
    menv.start(cid)
    cm = pod_metrics(menv)[pod].container_metrics
    assert {labels[2] for labels in base_labels(cm[0].metrics)} == {"busybox:as-typed"}
    s = series(cm[0].metrics, descriptors(menv))
    assert s[("container_spec_memory_limit_bytes", ())] == 64 * MiB
    assert s[("container_spec_cpu_quota", ())] == 50000
    assert s[("container_spec_cpu_period", ())] == 100000
    assert s[("container_spec_cpu_shares", ())] == 512
    assert cm[0].container_id == cid


def remove_cgroup(name):
    for root in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", root)
        d = os.path.join(base, name)
        for _ in range(100):
            if os.path.islink(base) or not os.path.isdir(d):
                break
            try:
                os.rmdir(d)
            except OSError:
                time.sleep(0.05)


def test_pod_level_metrics_come_from_the_pod_cgroup(menv):
    name = "crisp-test-podmetrics-%d" % os.getpid()
    menv.d.cgroup_names.append(name)
    pod = run_pod(menv, "cg", cgroup_parent="/" + name)
    try:
        cid = menv.run(pod, "busy", command=BUSY)
        acct, _, _, v2 = cgroup_dirs(menv.pid(cid))
        pod_acct = os.path.dirname(acct)
        wait_for(lambda: cpu_ns(pod_acct, v2) > 10**9, 20, what="1 s of CPU in the pod")
        descs = descriptors(menv)
        before = cpu_ns(pod_acct, v2)
        got = pod_metrics(menv)[pod]
        after = cpu_ns(pod_acct, v2)
        assert base_labels(got.metrics) == {(pod, "POD", "")}
        s = series(got.metrics, descs)
        assert before // 10**9 <= s[("container_cpu_usage_seconds_total", ("total",))] \
            <= after // 10**9
        assert s[("container_memory_usage_bytes", ())] > 0
        assert s[("container_processes", ())] >= 1  # the container's, one level down
        assert not any(k[0].startswith("container_fs_") for k in s)  # no writable layer
    finally:
        menv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        remove_cgroup(name)


# ---- network ----

def test_network_counters_are_the_pod_namespace_ones(menv):
    pod = run_pod(menv, "net")
    cid = menv.run(pod, "c", command=SLEEPER)
    pid = menv.pid(cid)
    ip = menv.c.call("PodSandboxStatus",
                     pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status.network.ip
    assert ip
    # Datagrams from the test's namespace over the bridge to the pod (nobody listens: the
    # pod answers some with ICMP errors, which it transmits); one first, for ARP.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", (ip, 9))
        wait_for(lambda: net_dev(pid)["eth0"][1] >= 1, 10, what="a first packet")
        start = net_dev(pid)["eth0"][1]
        for _ in range(200):
            s.sendto(b"x" * 1000, (ip, 9))
    wait_for(lambda: net_dev(pid)["eth0"][1] >= start + 200, 10, what="200 packets received")
    descs = descriptors(menv)

    before = net_dev(pid)
    got = pod_metrics(menv)[pod]
    after = net_dev(pid)

    s = series(got.metrics, descs)
    ifaces = {k[1][0] for k in s if k[0] in NET_FIELDS}
    assert ifaces == set(before) == {"eth0"}, "the pod's interfaces, without lo"
    for metric, column in NET_FIELDS.items():
        v = s[(metric, ("eth0",))]
        assert before["eth0"][column] <= v <= after["eth0"][column], metric
    assert s[("container_network_receive_bytes_total", ("eth0",))] >= 200 * 1000
    assert s[("container_network_transmit_packets_total", ("eth0",))] > 0
    for c in got.container_metrics:  # network is the pod's, not each container's
        assert not any(m.name in NET_FIELDS for m in c.metrics)


def test_host_network_pod_has_no_network_metrics(menv):
    pod = menv.run_pod("hostnet")  # ContainerEnv's pods share the host's network
    menv.run(pod, "c", command=SLEEPER)
    got = pod_metrics(menv)[pod]
    assert not any(m.name in NET_FIELDS for m in got.metrics)
    assert len(got.container_metrics) == 1


# ---- which pods and containers ----

def test_stopped_pods_and_exited_containers_are_left_out(menv):
    keep = run_pod(menv, "keep")
    gone = run_pod(menv, "gone")
    running = menv.run(keep, "running", command=SLEEPER)
    done = menv.run(keep, "done", command=["true"])
    menv.wait_exit(done)
    menv.run(gone, "c", command=SLEEPER)
    assert set(pod_metrics(menv)) == {keep, gone}
    menv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=gone), timeout=60)
    got = pod_metrics(menv)
    assert set(got) == {keep}
    assert [c.container_id for c in got[keep].container_metrics] == [running]
    menv.stop(running, timeout=0)
    got = pod_metrics(menv)
    assert len(got[keep].container_metrics) == 0 and len(got[keep].metrics) > 0


def test_stream_twin_covers_the_same_pods_and_series(menv):
    pods = [run_pod(menv, "s%d" % i) for i in range(3)]
    for p in pods:
        menv.run(p, "c", command=SLEEPER)
    listed = pod_metrics(menv)
    streamed = {}
    for msg in menv.c.stream("StreamPodSandboxMetrics", pb.StreamPodSandboxMetricsRequest()):
        for pm in msg.pod_sandbox_metrics:
            streamed[pm.pod_sandbox_id] = pm
    assert set(streamed) == set(listed) == set(pods)

    def shape(pm):
        return sorted((m.name, tuple(m.label_values)) for m in pm.metrics), sorted(
            (c.container_id, sorted(m.name for m in c.metrics)) for c in pm.container_metrics)
    for p in pods:
        assert shape(streamed[p]) == shape(listed[p])
