"""SIGHUP reloads the CNI configuration live: a conflist swapped in the directory, or the
cni-config-dir option pointed elsewhere, is what pods made afterwards get, while pods made
before keep the network they were set up with and still tear down with it (real bridge,
host-local, portmap and loopback plugins). A broken conflist makes the network not ready,
with its reason, and crisp keeps serving. Every test checks that both networks' address
allocations are released; crisp_factory's leak check covers links, iptables, pins and
state."""
import concurrent.futures
import ipaddress
import json
import os
import signal
import subprocess
import time

import grpc
import pytest

from cri_client import pb
from pod_harness import PLUGIN_DIRS, PodNet, pod_config, run_pod, status

pytestmark = pytest.mark.skipif(not PLUGIN_DIRS, reason="no CNI plugins installed")


class ReloadEnv:
    """A daemon (not started) and two networks on bridges and subnets of their own."""

    def __init__(self, d):
        self.d = d
        self.a = PodNet(d.tmp)
        self.b = PodNet(d.tmp)
        while self.b.subnet == self.a.subnet or self.b.bridge == self.a.bridge:
            self.b = PodNet(d.tmp)
        self.log_offset = 0

    @property
    def c(self):
        return self.d.client

    def sighup(self):
        """SIGHUP to the daemon's pid; returns the log offset to wait from."""
        offset = os.path.getsize(self.d.log_path)
        os.kill(self.d.proc.pid, signal.SIGHUP)
        return offset

    def wait_log(self, text, offset, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            with open(self.d.log_path, errors="replace") as f:
                f.seek(offset)
                log = f.read()
            if text in log:
                return log
            assert time.monotonic() < deadline, "no %r in the log after SIGHUP:\n%s" % (text, log)
            time.sleep(0.05)

    def run(self, name):
        return run_pod(self.c, pod_config(name))

    def ip(self, pod):
        return status(self.c, pod).status.network.ip

    def network_of(self, pod):
        info = json.loads(status(self.c, pod, verbose=True).info["info"])
        return info["network"]["conflist"]["name"]

    def remove(self, pod):
        self.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
        self.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod),
                    timeout=60)

    def network_ready(self):
        conds = self.c.call("Status", pb.StatusRequest()).status.conditions
        [net] = [x for x in conds if x.type == "NetworkReady"]
        return net


def in_subnet(ip, net):
    return ipaddress.ip_address(ip) in ipaddress.ip_network(net.subnet)


def write_conf(d, text):
    with open(os.path.join(d.conf_dir, "50-reload.conf"), "w") as f:
        f.write(text)


@pytest.fixture
def renv(crisp_factory):
    d = crisp_factory(start=False)
    env = ReloadEnv(d)
    yield env
    d.finish()
    for net in (env.a, env.b):
        subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
        assert net.allocations() == [], "%s kept %s" % (net.conflist["name"], net.allocations())


def test_sighup_picks_up_a_swapped_conflist(renv):
    renv.a.install(renv.d.cni_dir, "10-a.conflist")
    renv.d.start()
    first = renv.run("first")
    assert in_subnet(renv.ip(first), renv.a)

    os.unlink(os.path.join(renv.d.cni_dir, "10-a.conflist"))
    renv.b.install(renv.d.cni_dir, "10-b.conflist")
    log = renv.wait_log("reload: network '%s'" % renv.b.conflist["name"], renv.sighup())
    assert ("network '%s' from '%s/10-b.conflist', was network '%s' from '%s/10-a.conflist'"
            % (renv.b.conflist["name"], renv.d.cni_dir, renv.a.conflist["name"],
               renv.d.cni_dir)) in log, log
    assert "takes effect at the next start" not in log

    second = renv.run("second")
    assert in_subnet(renv.ip(second), renv.b)
    assert renv.network_of(second) == renv.b.conflist["name"]
    # The first pod keeps its network and address, and is torn down with the list it was
    # set up with, although that file is gone.
    assert in_subnet(renv.ip(first), renv.a)
    assert renv.network_of(first) == renv.a.conflist["name"]
    assert renv.a.allocations() and renv.b.allocations()
    renv.remove(first)
    assert renv.a.allocations() == []
    renv.remove(second)
    assert renv.b.allocations() == []


def test_sighup_follows_the_cni_config_dir_option(renv):
    dir_a = os.path.join(renv.d.tmp, "cni-a")
    os.makedirs(dir_a)
    renv.a.install(dir_a)
    renv.b.install(renv.d.cni_dir)
    write_conf(renv.d, "[network]\ncni-config-dir = %s\n" % dir_a)
    renv.d.start()
    first = renv.run("first")
    assert in_subnet(renv.ip(first), renv.a)

    os.unlink(os.path.join(renv.d.conf_dir, "50-reload.conf"))
    log = renv.wait_log("reload: CNI config dir '%s', was '%s'" % (renv.d.cni_dir, dir_a),
                        renv.sighup())
    assert "reload: [network] cni-config-dir changed" not in log, log
    second = renv.run("second")
    assert in_subnet(renv.ip(second), renv.b)
    # The configuration in effect says so too.
    info = renv.c.call("Status", pb.StatusRequest(verbose=True)).info
    assert json.loads(info["config"])["network"]["cni-config-dir"] == renv.d.cni_dir

    renv.remove(first)
    renv.remove(second)
    assert renv.a.allocations() == [] and renv.b.allocations() == []


def test_sighup_with_a_broken_conflist_reports_the_network_not_ready(renv):
    renv.a.install(renv.d.cni_dir, "10-a.conflist")
    renv.d.start()
    first = renv.run("first")
    ip = renv.ip(first)
    assert renv.network_ready().status

    with open(os.path.join(renv.d.cni_dir, "10-a.conflist"), "w") as f:
        f.write('{"cniVersion": "1.0.0", "name": ')
    log = renv.wait_log("reload: the network is not ready: ", renv.sighup())
    assert "no network (no valid CNI network configuration in '%s'" % renv.d.cni_dir in log, log
    net = renv.network_ready()
    assert not net.status and net.reason == "NetworkPluginNotReady"
    assert "10-a.conflist: not a JSON object" in net.message, net.message
    # crisp keeps serving; the running pod keeps its network; a new one is refused whole.
    renv.c.call("Version", pb.VersionRequest())
    assert status(renv.c, first).status.state == pb.SANDBOX_READY and renv.ip(first) == ip
    with pytest.raises(grpc.RpcError) as e:
        renv.run("refused")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "network not ready" in e.value.details()
    pods = renv.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [p.id for p in pods] == [first]

    # Fixed and reloaded: ready again, and the old pod still tears down.
    renv.b.install(renv.d.cni_dir, "10-a.conflist")
    renv.wait_log("reload: network '%s'" % renv.b.conflist["name"], renv.sighup())
    assert renv.network_ready().status
    renv.remove(first)
    assert renv.a.allocations() == []


def test_sighup_while_pods_are_made(renv):
    """Pods made while SIGHUPs swap the list under them each get one whole network: the
    address, the stored list and the teardown all agree."""
    renv.a.install(renv.d.cni_dir, "10-net.conflist")
    renv.d.start()
    names = ["p%d" % i for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(renv.run, n) for n in names]
        for i in range(10):
            (renv.b if i % 2 == 0 else renv.a).install(renv.d.cni_dir, "10-net.conflist")
            renv.sighup()
            time.sleep(0.1)
        pods = [f.result() for f in futures]
    for pod in pods:
        net = renv.a if renv.network_of(pod) == renv.a.conflist["name"] else renv.b
        assert in_subnet(renv.ip(pod), net), (pod, renv.ip(pod), net.subnet)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(renv.remove, pods))
    assert renv.a.allocations() == [] and renv.b.allocations() == []
