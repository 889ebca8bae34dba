#!/usr/bin/python3
"""Pod sandbox latency through crisp beside the floor, the same work done without crisp.

crisp, through CRI: RunPodSandbox, StopPodSandbox, RemovePodSandbox and the whole cycle, median
and p95 over N pods, for a host-network pod (no CNI) and a pod with its own network (bridge +
host-local + portmap + loopback on a private test subnet).

The floor, in the same run and interleaved with crisp's cycles so both see the same machine,
pins what crisp pins for that kind of pod with the ordinary tools:
- host-network: `unshare --ipc=<file> true` (the IPC namespace bound onto a file, as crisp's
  pin does) and a tmpfs for /dev/shm; unpinning is umount + unlink of both;
- network: `ip netns add`, `unshare --ipc=<file> --uts=<file> hostname <name>`, the shm tmpfs,
  then the same conflist's plugins exec'd directly per the CNI spec (ADD in order with
  prevResult chained, DEL in reverse with the final result), then `ip netns del` and the
  unpinning.  The floor has its own bridge, subnet (10.89.x.0/24) and host-local directory.
The overhead per pod is crisp's run+stop+remove against the floor's pin+unpin (medians).

Usage (root): CRISP_BUILDDIR=/path/to/build bench/pod/bench-pod.py [-n 50] [--json]"""
import argparse
import copy
import ctypes
import json
import os
import random
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from cri_client import pb  # noqa: E402
from crisp_daemon import CrispDaemon  # noqa: E402
from pod_harness import (PLUGIN_DIRS, PodNet, pod_config,  # noqa: E402
                         remove_shared_portmap_chains, iptables_rules)

LIBC = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_NOEXEC, MNT_DETACH = 2, 4, 8, 2
SHM_OPTS = b"mode=1777,size=65536k"  # crisp's default shm size


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def summary(values):
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(p95(values), 2)}


def check(rc, what):
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def run(*cmd, stdin=None, env=None):
    res = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (" ".join(cmd), res.returncode,
                                                      res.stdout.strip(), res.stderr.strip()))
    return res.stdout


# ---- the floor ----

class Floor:
    """Pods without crisp: namespace pins under dir, and for networked pods a netns under
    /run/netns plus the conflist's plugins run directly on the floor's own bridge/subnet."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir)
        n = random.randint(1, 254)
        self.bridge = "crisp-f%04x" % random.randint(0, 0xffff)
        self.subnet = "10.89.%d.0/24" % n
        self.ipam_dir = os.path.join(dir, "ipam")
        net = PodNet(dir)  # the same plugin chain crisp is given, re-pointed at our own net
        self.conflist = copy.deepcopy(net.conflist)
        self.conflist["name"] = "crisp-floor-%d" % n
        ipam = self.conflist["plugins"][0]
        ipam["bridge"] = self.bridge
        ipam["ipam"]["ranges"] = [[{"subnet": self.subnet}]]
        ipam["ipam"]["dataDir"] = self.ipam_dir
        self.live = {}  # name -> state, for cleanup after a failure

    def _plugin(self, plugin, command, cid, netns, args, prev):
        conf = dict(plugin, name=self.conflist["name"], cniVersion=self.conflist["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
               "CNI_IFNAME": "eth0", "CNI_ARGS": args, "CNI_PATH": ":".join(PLUGIN_DIRS),
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        exe = next(os.path.join(d, plugin["type"]) for d in PLUGIN_DIRS
                   if os.path.exists(os.path.join(d, plugin["type"])))
        out = run(exe, stdin=json.dumps(conf), env=env)
        return json.loads(out) if command == "ADD" else None

    def pin(self, name, network):
        """What RunPodSandbox has to do at least; returns the pod's state."""
        st = {"name": name, "network": network, "pins": [], "shm": None, "netns": None,
              "result": None}
        self.live[name] = st
        kinds = ("ipc", "uts") if network else ("ipc",)
        for k in kinds:
            path = os.path.join(self.dir, "%s-%s" % (name, k))
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400))
            st["pins"].append(path)
        cmd = ["unshare"] + ["--%s=%s" % (k, p) for k, p in zip(kinds, st["pins"])]
        run(*cmd, *(["hostname", name] if network else ["true"]))
        shm = os.path.join(self.dir, name + "-shm")
        os.mkdir(shm, 0o700)
        st["shm"] = shm
        check(LIBC.mount(b"shm", shm.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         SHM_OPTS), "mount " + shm)
        if network:
            run("ip", "netns", "add", name)
            st["netns"] = name
            args = ("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=%s;"
                    "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s-uid" % (name, name, name))
            st["args"] = args
            prev = None
            st["result"] = {}  # DEL is due from the first ADD on
            for plugin in self.conflist["plugins"]:
                prev = self._plugin(plugin, "ADD", name, "/run/netns/" + name, args, prev)
                st["result"] = prev
        return st

    def unpin(self, st):
        """What StopPodSandbox + RemovePodSandbox have to do at least."""
        first = None
        if st["result"] is not None:
            for plugin in reversed(self.conflist["plugins"]):
                try:
                    self._plugin(plugin, "DEL", st["name"], "/run/netns/" + st["name"],
                                 st["args"], st["result"] or None)
                except RuntimeError as e:
                    first = first or e
            st["result"] = None
        if st["netns"]:
            run("ip", "netns", "del", st["netns"])
            st["netns"] = None
        for path in st["pins"] + ([st["shm"]] if st["shm"] else []):
            if LIBC.umount2(path.encode(), MNT_DETACH) < 0 and ctypes.get_errno() not in (22, 2):
                check(-1, "umount " + path)
        for path in st["pins"]:
            os.unlink(path)
        if st["shm"]:
            os.rmdir(st["shm"])
        st["pins"], st["shm"] = [], None
        del self.live[st["name"]]
        if first:
            raise first

    def cycle(self, name, network, times):
        t0 = time.perf_counter()
        st = self.pin(name, network)
        t1 = time.perf_counter()
        self.unpin(st)
        t2 = time.perf_counter()
        for k, v in (("run", t1 - t0), ("stop+remove", t2 - t1), ("total", t2 - t0)):
            times[k].append(v * 1000)

    def cleanup(self):
        for st in list(self.live.values()):
            try:
                self.unpin(st)
            except (OSError, RuntimeError) as e:
                print("floor cleanup of %s: %s" % (st["name"], e), file=sys.stderr)
                if st["netns"]:
                    subprocess.run(["ip", "netns", "del", st["netns"]], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)


# ---- crisp ----

def crisp_cycle(d, name, host_network, times):
    c = d.client
    cfg = pod_config(name, namespace="bench", host_network=host_network)
    t0 = time.perf_counter()
    pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
    t1 = time.perf_counter()
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    t2 = time.perf_counter()
    c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    t3 = time.perf_counter()
    for k, v in (("run", t1 - t0), ("stop", t2 - t1), ("remove", t3 - t2),
                 ("stop+remove", t3 - t1), ("total", t3 - t0)):
        times[k].append(v * 1000)


def run_series(d, floor, n, warmup, host_network):
    crisp_t = {k: [] for k in ("run", "stop", "remove", "stop+remove", "total")}
    floor_t = {k: [] for k in ("run", "stop+remove", "total")}
    tag = "h" if host_network else "c"
    for i in range(warmup):
        floor.cycle("floor-%s-w%d" % (tag, i), not host_network, {k: [] for k in floor_t})
        crisp_cycle(d, "bench-%s-w%d" % (tag, i), host_network, {k: [] for k in crisp_t})
    for i in range(n):
        floor.cycle("floor-%s-%d" % (tag, i), not host_network, floor_t)
        crisp_cycle(d, "bench-%s-%d" % (tag, i), host_network, crisp_t)
    crisp_s = {k: summary(v) for k, v in crisp_t.items()}
    floor_s = {k: summary(v) for k, v in floor_t.items()}
    return {"crisp": crisp_s, "floor": floor_s,
            "overhead_ms_per_pod": round(crisp_s["total"]["median_ms"]
                                         - floor_s["total"]["median_ms"], 2)}


def print_table(n, results):
    print("pods: %d per series, floor interleaved (median / p95 ms)" % n)
    for name, r in results.items():
        print("\n%-14s %18s %18s" % (name, "crisp (CRI)", "floor (no crisp)"))
        for k, v in r["crisp"].items():
            f = r["floor"].get(k)
            print("%-14s %18s %18s" % (k, "%.1f / %.1f" % (v["median_ms"], v["p95_ms"]),
                                       "%.1f / %.1f" % (f["median_ms"], f["p95_ms"]) if f else ""))
        print("overhead per pod (run+stop+remove medians, crisp - floor): %.1f ms"
              % r["overhead_ms_per_pod"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    shared_before = any("CNI-HOSTPORT" in r[1] for r in iptables_rules())
    netns_dir_before = os.path.exists("/run/netns")
    d = CrispDaemon(None)
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    floor = Floor(os.path.join(d.tmp, "floor"))
    results = {}
    try:
        d.start()
        results["host-network"] = run_series(d, floor, args.n, args.warmup, True)
        results["cni"] = run_series(d, floor, args.n, args.warmup, False)
    finally:
        floor.cleanup()
        leaks = d.cleanup()
        subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
        if not shared_before:
            remove_shared_portmap_chains()
        if not netns_dir_before and os.path.isdir("/run/netns") and not os.listdir("/run/netns"):
            # `ip netns add` made /run/netns a mount point of its own.
            subprocess.run(["umount", "/run/netns"], stderr=subprocess.DEVNULL)
            os.rmdir("/run/netns")
    if args.json:
        print(json.dumps({"n": args.n, "results": results, "leaks": leaks}, indent=2))
    else:
        print_table(args.n, results)
    if leaks:
        print("leaked mounts: %s" % leaks, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
