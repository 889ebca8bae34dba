"""Helpers for the pod sandbox tests: a CNI configuration on a test bridge and subnet, pod
configs, looking inside pinned namespaces (what may leak is leakcheck's business)."""
import json
import os
import random
import subprocess

import leakcheck
from cri_client import pb

PLUGIN_DIRS = [d for d in ("/opt/cni/bin", "/usr/lib/cni") if os.path.isdir(d)]
BUSYBOX = "/usr/bin/busybox"

# The rules and user chains of every table: {(table, rule or chain)}.
iptables_rules = leakcheck.iptables


class PodNet:
    """A CNI conflist on a bridge and subnet unique to this test, written into a daemon's
    cni-config-dir; host-local keeps its allocations under the test's directory."""

    def __init__(self, tmp, extra_plugins=()):
        n = random.randint(1, 254)
        self.bridge = "crisp-t%04x" % random.randint(0, 0xffff)
        self.subnet = "10.88.%d.0/24" % n
        self.ipam_dir = os.path.join(tmp, "ipam")
        self.conflist = {
            "cniVersion": "1.0.0", "name": "crisp-test-%d" % n,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "dataDir": self.ipam_dir}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
                *extra_plugins,
            ]}

    def install(self, cni_dir, name="10-crisp-test.conflist"):
        """Written aside and renamed into place, as a node's CNI installer should: crisp reads
        the directory whenever it changes, and a file it reads half-written is broken."""
        path = os.path.join(cni_dir, name)
        with open(path + ".partial", "w") as f:
            json.dump(self.conflist, f)
        os.rename(path + ".partial", path)

    def allocations(self):
        d = os.path.join(self.ipam_dir, self.conflist["name"])
        if not os.path.isdir(d):
            return []
        return [f for f in os.listdir(d) if f[0].isdigit()]


def pod_config(name, uid=None, namespace="crisp-test", attempt=0, host_network=False,
               **kw):
    ns = pb.NamespaceOption(network=pb.NODE if host_network else pb.POD,
                            pid=kw.pop("pid", pb.CONTAINER), ipc=kw.pop("ipc", pb.POD))
    linux = pb.LinuxPodSandboxConfig(
        sysctls=kw.pop("sysctls", {}), cgroup_parent=kw.pop("cgroup_parent", ""),
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns))
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid or name + "-uid",
                                       namespace=namespace, attempt=attempt),
        linux=linux, **kw)


def run_pod(client, config, timeout=60):
    return client.call("RunPodSandbox", pb.RunPodSandboxRequest(config=config),
                       timeout=timeout).pod_sandbox_id


def status(client, pod_id, verbose=False):
    return client.call("PodSandboxStatus",
                       pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose))


def pin(daemon, pod_id, kind):
    return os.path.join(daemon.run_root, "ns", "%s-%s" % (pod_id, kind))


def pod_file(daemon, pod_id, name):
    with open(os.path.join(daemon.run_root, "pods", pod_id, name)) as f:
        return f.read()


def nsenter(*args, **ns):
    cmd = ["nsenter"] + ["--%s=%s" % (k, v) for k, v in ns.items()] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def nsfs_mounts_under(path):
    return [mp for mp, fstype in leakcheck.mounts_under(path) if fstype == "nsfs"]
