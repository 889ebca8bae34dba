"""Pod sandboxes end to end: Run/Stop/Remove/Status/List, namespaces, DNS and hostname seen
from inside, sysctls, CNI networking between two pods, retries, and restart recovery.  Every
test checks afterwards (crisp_factory's leak check) that no namespace pin, link, iptables rule
or chain, or IP allocation leaked."""
import concurrent.futures
import json
import os
import subprocess
import time

import grpc
import pytest

from cri_client import pb
from pod_harness import (BUSYBOX, PLUGIN_DIRS, PodNet, iptables_rules, nsenter,
                         nsfs_mounts_under, pin, pod_config, pod_file, run_pod, status)

HERE = os.path.dirname(os.path.abspath(__file__))

pytestmark = pytest.mark.skipif(not PLUGIN_DIRS, reason="no CNI plugins installed")


class PodEnv:
    def __init__(self, daemon, net, marker_dir):
        self.d = daemon
        self.net = net
        self.markers = marker_dir

    @property
    def client(self):
        return self.d.client

    def pause(self, command):
        open(os.path.join(self.markers, "pause-" + command), "w").close()

    def unpause(self, command):
        try:
            os.unlink(os.path.join(self.markers, "pause-" + command))
        except FileNotFoundError:
            pass

    def wait_marker(self, command, timeout=20):
        path = os.path.join(self.markers, command)
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            assert time.monotonic() < deadline, "CNI %s never started" % command
            time.sleep(0.05)


@pytest.fixture
def podenv(crisp_factory):
    """A daemon with a CNI network of its own (PodNet, plus the crisp-test plugin that can be
    paused); at teardown every pod is removed and the bridge deleted (the bridge plugin never
    deletes it), then crisp_factory checks for leaks."""
    d = crisp_factory(start=False)
    markers = os.path.join(d.tmp, "markers")
    plugin_dir = os.path.join(d.tmp, "cnibin")
    os.makedirs(markers)
    os.makedirs(plugin_dir)
    os.symlink(os.path.join(HERE, "cni_test_plugin.py"), os.path.join(plugin_dir, "crisp-test"))
    with open(os.path.join(d.conf_dir, "50-pod-test.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join([plugin_dir] + PLUGIN_DIRS))
    net = PodNet(d.tmp, extra_plugins=[{"type": "crisp-test", "markerDir": markers,
                                        "sleep": 30}])
    net.install(d.cni_dir)
    d.start()
    env = PodEnv(d, net, markers)
    yield env
    env.unpause("ADD")
    env.unpause("DEL")
    if d.proc is None:
        d.start()
    d.finish()
    subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value


# ---- lifecycle ----

def test_run_status_stop_remove(podenv):
    c = podenv.client
    cfg = pod_config("web", labels={"app": "web"}, annotations={"note": "x"},
                     hostname="web-host")
    pod = run_pod(c, cfg)
    assert len(pod) == 64
    st = status(c, pod, verbose=True)
    assert st.status.state == pb.SANDBOX_READY
    assert st.status.metadata.name == "web" and st.status.metadata.uid == "web-uid"
    assert dict(st.status.labels) == {"app": "web"}
    assert dict(st.status.annotations) == {"note": "x"}
    assert st.status.network.ip.startswith(podenv.net.subnet.rsplit(".", 1)[0] + ".")
    assert st.status.linux.namespaces.options.network == pb.POD
    info = json.loads(st.info["info"])
    assert info["state"] == "ready" and info["network"]["result"]["ips"]
    for kind in ("net", "ipc", "uts"):
        assert os.path.exists(pin(podenv.d, pod, kind))
    assert not os.path.exists(pin(podenv.d, pod, "pid"))  # pid CONTAINER: no pause process
    # The pins live on a private mount of their own, so they never propagate to peers.
    prop = subprocess.run(["findmnt", "-n", "-o", "PROPAGATION", os.path.join(podenv.d.run_root,
                                                                               "ns")],
                          capture_output=True, text=True).stdout.split()
    assert prop and prop[0] == "private"

    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    st = status(c, pod)
    assert st.status.state == pb.SANDBOX_NOTREADY
    assert st.status.network.ip == ""
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert podenv.net.allocations() == []
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))  # idempotent

    c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert rpc_error(status, c, pod).code() == grpc.StatusCode.NOT_FOUND
    c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))  # gone is fine
    assert not os.path.exists(os.path.join(podenv.d.run_root, "pods", pod))
    assert not os.path.exists(os.path.join(podenv.d.root, "pods", pod))
    err = rpc_error(c.call, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_remove_stops_a_running_pod(podenv):
    pod = run_pod(podenv.client, pod_config("direct"))
    podenv.client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert podenv.net.allocations() == []


def test_invalid_metadata_is_rejected(podenv):
    cfg = pod_config("x")
    cfg.metadata.name = ""
    err = rpc_error(run_pod, podenv.client, cfg)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata.name" in err.details()
    cfg = pod_config("x", namespace="")
    err = rpc_error(run_pod, podenv.client, cfg)
    assert "metadata.namespace" in err.details()


def test_retry_returns_the_same_id(podenv):
    c = podenv.client
    cfg = pod_config("retry")
    first = run_pod(c, cfg)
    assert run_pod(c, cfg) == first
    assert run_pod(c, pod_config("retry", attempt=1)) != first
    # A retry while the first call is still in CNI ADD waits for it and gets its id.
    podenv.pause("ADD")
    podenv.net.conflist["plugins"][-1]["sleep"] = 2
    podenv.net.install(podenv.d.cni_dir)
    slow = pod_config("slow")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a = ex.submit(run_pod, c, slow)
        podenv.wait_marker("ADD")
        b = ex.submit(run_pod, c, slow)
        assert a.result() == b.result()
    podenv.unpause("ADD")
    names = [p.metadata.name for p in c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items]
    assert sorted(names) == ["retry", "retry", "slow"]


def test_list_filters(podenv):
    c = podenv.client
    a = run_pod(c, pod_config("a", labels={"tier": "front", "app": "a"}))
    b = run_pod(c, pod_config("b", labels={"tier": "back"}))
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=b))

    def ids(**f):
        req = pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(**f))
        return sorted(p.id for p in c.call("ListPodSandbox", req).items)

    assert ids() == sorted([a, b])
    assert ids(id=a) == [a]
    assert ids(id=b[:12]) == [b]
    assert ids(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY)) == [a]
    assert ids(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY)) == [b]
    assert ids(label_selector={"tier": "front"}) == [a]
    assert ids(label_selector={"tier": "front", "app": "b"}) == []
    # Status accepts a unique prefix too.
    assert status(c, a[:10]).status.id == a


# ---- inside the pod ----

def test_dns_hostname_and_hosts(podenv):
    c = podenv.client
    dns = pb.DNSConfig(servers=["10.96.0.10", "10.96.0.11"],
                       searches=["crisp-test.svc.cluster.local", "svc.cluster.local"],
                       options=["ndots:5", "timeout:2"])
    pod = run_pod(c, pod_config("dns", hostname="dns-pod", dns_config=dns))
    resolv = pod_file(podenv.d, pod, "resolv.conf")
    assert resolv.splitlines() == [
        "search crisp-test.svc.cluster.local svc.cluster.local",
        "nameserver 10.96.0.10", "nameserver 10.96.0.11", "options ndots:5 timeout:2"]
    assert pod_file(podenv.d, pod, "hostname") == "dns-pod\n"
    r = nsenter("hostname", uts=pin(podenv.d, pod, "uts"))
    assert r.returncode == 0 and r.stdout.strip() == "dns-pod"
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() != "dns-pod"
    ip = status(c, pod).status.network.ip
    assert "%s\tdns-pod" % ip in pod_file(podenv.d, pod, "hosts")
    # /dev/shm for the pod's containers: a sized tmpfs of its own.
    shm = os.path.join(podenv.d.run_root, "pods", pod, "shm")
    out = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,OPTIONS", shm],
                         capture_output=True, text=True).stdout
    assert out.startswith("tmpfs") and "size=65536k" in out
    # Without a DNS config the host's resolv.conf is used.
    pod2 = run_pod(c, pod_config("nodns"))
    with open("/etc/resolv.conf") as f:
        assert pod_file(podenv.d, pod2, "resolv.conf") == f.read()
    assert pod_file(podenv.d, pod2, "hostname") == "nodns\n"


def test_host_network_pod(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("hostnet", host_network=True))
    assert not os.path.exists(pin(podenv.d, pod, "net"))
    assert not os.path.exists(pin(podenv.d, pod, "uts"))
    assert os.path.exists(pin(podenv.d, pod, "ipc"))
    st = status(c, pod)
    assert st.status.network.ip == ""
    assert st.status.linux.namespaces.options.network == pb.NODE
    assert not os.path.exists(os.path.join(podenv.markers, "ADD"))  # no CNI call at all
    with open("/etc/hosts") as f:
        assert pod_file(podenv.d, pod, "hosts") == f.read()
    assert podenv.net.allocations() == []


def test_shared_pid_namespace_runs_pause(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("pidpod", pid=pb.POD))
    info = json.loads(status(c, pod, verbose=True).info["info"])
    pid = info["pausePid"]
    assert pid > 0
    with open("/proc/%d/cmdline" % pid) as f:
        assert f.read().startswith("crisp-pause")
    assert os.readlink("/proc/%d/ns/pid" % pid) != os.readlink("/proc/self/ns/pid")
    assert os.readlink("/proc/%d/ns/net" % pid) == nsenter(
        "readlink", "/proc/self/ns/net", net=pin(podenv.d, pod, "net")).stdout.strip()
    # A process entering the pinned PID namespace gets a small pid there (pause is 1).
    r = nsenter("sh", "-c", "echo $$", pid=pin(podenv.d, pod, "pid"))
    assert r.returncode == 0 and 1 < int(r.stdout) < 100, r
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    assert not os.path.exists("/proc/%d/cmdline" % pid) or \
        open("/proc/%d/cmdline" % pid).read() == ""


def test_two_pods_reach_each_other(podenv):
    c = podenv.client
    a = run_pod(c, pod_config("ping-a"))
    b = run_pod(c, pod_config("ping-b"))
    ip_a = status(c, a).status.network.ip
    ip_b = status(c, b).status.network.ip
    assert ip_a != ip_b
    r = nsenter(BUSYBOX, "ping", "-c", "2", "-W", "3", ip_b, net=pin(podenv.d, a, "net"))
    assert r.returncode == 0, r.stdout + r.stderr
    r = nsenter(BUSYBOX, "ping", "-c", "1", "-W", "3", ip_a, net=pin(podenv.d, b, "net"))
    assert r.returncode == 0, r.stdout + r.stderr
    # After b stops, a can no longer reach it.
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=b))
    r = nsenter(BUSYBOX, "ping", "-c", "1", "-W", "1", ip_b, net=pin(podenv.d, a, "net"))
    assert r.returncode != 0


def test_port_mapping_rules_come_and_go(podenv):
    c = podenv.client
    before = iptables_rules()
    pod = run_pod(c, pod_config("ports", port_mappings=[
        pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=31000 + os.getpid() % 1000)]))
    ip = status(c, pod).status.network.ip
    added = {r for _, r in iptables_rules() - before}
    assert any("--dport %d" % (31000 + os.getpid() % 1000) in r for r in added), added
    assert any(ip in r for r in added)
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    left = {r for _, r in iptables_rules() - before}
    assert not any(ip in r or "--dport %d" % (31000 + os.getpid() % 1000) in r for r in left)


# ---- sysctls ----

def test_allowed_sysctls_are_set_inside(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("sysctl", sysctls={
        "kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "123",
        "fs.mqueue.msg_max": "42"}))
    r = nsenter("cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                net=pin(podenv.d, pod, "net"))
    assert r.stdout.strip() == "123"
    r = nsenter("cat", "/proc/sys/kernel/shm_rmid_forced", "/proc/sys/fs/mqueue/msg_max",
                ipc=pin(podenv.d, pod, "ipc"))
    assert r.stdout.split() == ["1", "42"]
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        assert f.read().strip() != "123"  # the host is untouched


@pytest.mark.parametrize("key,host_network", [
    ("kernel.core_pattern", False), ("vm.overcommit_memory", False),
    ("net.ipv4.ip_forward", True), ("kernel.shm/../core_pattern", False)])
def test_rejected_sysctls(podenv, key, host_network):
    err = rpc_error(run_pod, podenv.client,
                    pod_config("bad", host_network=host_network, sysctls={key: "1"}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert key in err.details()
    assert not podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items


def test_sysctl_value_is_never_split(podenv):
    with open("/proc/sys/kernel/core_pattern") as f:
        core = f.read()
    value = "1+kernel.core_pattern=|/tmp/crisp-pwned\nkernel.core_pattern=|/tmp/crisp-pwned"
    err = rpc_error(run_pod, podenv.client,
                    pod_config("cve", sysctls={"kernel.shm_rmid_forced": value}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core
    # The failed run left nothing behind.
    assert not podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert os.listdir(os.path.join(podenv.d.run_root, "pods")) == []


def test_cgroup_parent_kept_and_checked(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("cg", cgroup_parent="/kubepods/besteffort/podcg"))
    info = json.loads(status(c, pod, verbose=True).info["info"])
    assert info["cgroupParent"] == "/kubepods/besteffort/podcg"
    err = rpc_error(run_pod, c, pod_config("cg2", cgroup_parent="kubepods-pod1.slice"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "cgroup_parent" in err.details()


# ---- restart ----

def test_restart_keeps_pods_and_states(podenv):
    c = podenv.client
    ready = run_pod(c, pod_config("keep"))
    stopped = run_pod(c, pod_config("stopped"))
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=stopped))
    ip = status(c, ready).status.network.ip
    podenv.d.kill9()
    podenv.d.start()
    c = podenv.client
    states = {p.id: p.state for p in c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items}
    assert states == {ready: pb.SANDBOX_READY, stopped: pb.SANDBOX_NOTREADY}
    assert status(c, ready).status.network.ip == ip
    # The retry map survives too.
    assert run_pod(c, pod_config("keep")) == ready
    # DEL after the restart uses the stored result.
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=ready))
    assert podenv.net.allocations() == []


def test_kill_during_run_cleans_the_half_created_pod(podenv):
    podenv.pause("ADD")
    c = podenv.client
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(run_pod, c, pod_config("half"))
        podenv.wait_marker("ADD")
        podenv.d.kill9()
        with pytest.raises(grpc.RpcError):
            fut.result()
    podenv.unpause("ADD")
    assert podenv.net.allocations()  # bridge+host-local ran before the paused plugin
    podenv.d.start()
    assert not podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert podenv.net.allocations() == []
    assert os.listdir(os.path.join(podenv.d.root, "pods")) == []
    assert os.listdir(os.path.join(podenv.d.run_root, "pods")) == []


def test_kill_during_stop_finishes_the_stop(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("halfstop"))
    podenv.pause("DEL")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(c.call, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        podenv.wait_marker("DEL")
        podenv.d.kill9()
        with pytest.raises(grpc.RpcError):
            fut.result()
    podenv.unpause("DEL")
    podenv.d.start()
    items = podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [(p.id, p.state) for p in items] == [(pod, pb.SANDBOX_NOTREADY)]
    assert not nsfs_mounts_under(podenv.d.tmp)
    assert podenv.net.allocations() == []


def test_corrupt_record_is_quarantined(podenv):
    c = podenv.client
    good = run_pod(c, pod_config("good"))
    bad = run_pod(c, pod_config("bad"))
    podenv.d.kill9()
    with open(os.path.join(podenv.d.root, "pods", bad, "pod.json"), "w") as f:
        f.write('{"version": 1, "id": "%s", "state": "rea' % bad)
    podenv.d.start()
    ids = [p.id for p in podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items]
    assert ids == [good]
    quarantined = os.listdir(os.path.join(podenv.d.root, "pods", ".quarantine"))
    assert len(quarantined) == 1 and quarantined[0].startswith(bad)
    # Its pins were swept, since no record owns them any more.
    assert not os.path.exists(pin(podenv.d, bad, "net"))
    assert "quarantine" in open(podenv.d.log_path).read()
    # Its network attachment was intact: the IP it held is released.
    ip_files = podenv.net.allocations()
    assert len(ip_files) == 1  # only the good pod's
    assert not os.path.exists(os.path.join(podenv.d.root, "pods", ".quarantine", quarantined[0],
                                           "network.json"))


def test_an_empty_record_counts_as_never_written_and_its_network_is_released(podenv):
    """Only a power loss empties a record (its rename reached the disk, its data did not):
    the pod is released as if its record had never been written, its attachment's DEL
    frees its address, and nothing is quarantined."""
    c = podenv.client
    good = run_pod(c, pod_config("good"))
    lost = run_pod(c, pod_config("lost"))
    podenv.d.kill9()
    open(os.path.join(podenv.d.root, "pods", lost, "pod.json"), "w").close()
    podenv.d.start()
    ids = [p.id for p in podenv.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items]
    assert ids == [good]
    assert "pods/%s: record 'pod.json' is empty" % lost in open(podenv.d.log_path).read()
    assert not os.path.exists(os.path.join(podenv.d.root, "pods", lost))
    assert not os.path.exists(os.path.join(podenv.d.root, "pods", ".quarantine"))
    assert not os.path.exists(pin(podenv.d, lost, "net"))
    with open(os.path.join(podenv.markers, "DEL")) as f:
        assert lost in f.read().split()
    assert len(podenv.net.allocations()) == 1  # only the good pod's


def test_del_after_a_restart_gets_the_result_of_add(podenv):
    # ADD's result is kept on disk beside the attachment (network-result.json): a crisp that
    # was killed and started again still hands it to DEL as prevResult.
    c = podenv.client
    pod = run_pod(c, pod_config("prev"))
    with open(os.path.join(podenv.markers, "ADD-prev")) as f:
        given = json.loads(f.read().splitlines()[-1])
    assert given.get("ips"), given  # what the bridge plugin returned, chained to ours
    obj = os.path.join(podenv.d.root, "pods", pod)
    assert json.load(open(os.path.join(obj, "network-result.json")))["ips"] == given["ips"]
    podenv.d.kill9()
    podenv.d.start()
    c = podenv.client
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    with open(os.path.join(podenv.markers, "DEL-prev")) as f:
        got = json.loads(f.read().splitlines()[-1])
    assert got.get("ips") == given["ips"]
    assert not os.path.exists(os.path.join(obj, "network-result.json"))
    assert not os.path.exists(os.path.join(obj, "network.json"))
    assert podenv.net.allocations() == []


def test_cni_plugins_get_no_descriptor_of_crisps(podenv):
    # Only stdio reaches a plugin: nothing crisp holds (its gRPC sockets, records, the
    # standby monitor's socket) while other calls run.
    c = podenv.client
    pods = [run_pod(c, pod_config("fds-%d" % i)) for i in range(3)]
    for pod in pods:
        c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    for cmd in ("ADD", "DEL"):
        with open(os.path.join(podenv.markers, cmd + "-fds")) as f:
            calls = [json.loads(line) for line in f.read().splitlines()]
        assert len(calls) >= 3 and all(fds == {} for fds in calls), (cmd, calls)


def test_no_network_config_fails_cleanly(podenv):
    c = podenv.client
    pod = run_pod(c, pod_config("before"))
    os.unlink(os.path.join(podenv.d.cni_dir, "10-crisp-test.conflist"))
    st = c.call("Status", pb.StatusRequest()).status
    ready = {x.type: x for x in st.conditions}["NetworkReady"]
    assert not ready.status and ready.reason == "NetworkPluginNotReady"
    err = rpc_error(run_pod, c, pod_config("after"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    ids = [p.id for p in c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items]
    assert ids == [pod]
    assert sorted(os.listdir(os.path.join(podenv.d.run_root, "pods"))) == [pod]
    # The first pod's network is torn down from its stored attachment, config or not.
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    assert podenv.net.allocations() == []
    # A host-network pod needs no CNI configuration.
    run_pod(c, pod_config("hostnet-ok", host_network=True))
