#!/usr/bin/python3
"""Pod sandbox latency: RunPodSandbox, StopPodSandbox, RemovePodSandbox and the whole
run+stop+remove cycle, median and p95 over N pods, for a host-network pod (no CNI) and a pod
with its own network (bridge + host-local + portmap + loopback on a private test subnet).

Usage (root): CRISP_BUILDDIR=/path/to/build bench/pod/bench-pod.py [-n 50] [--json]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from cri_client import pb  # noqa: E402
from crisp_daemon import CrispDaemon  # noqa: E402
from pod_harness import PodNet, pod_config, remove_shared_portmap_chains, iptables_rules  # noqa


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def run_series(d, n, host_network):
    times = {"run": [], "stop": [], "remove": [], "total": []}
    c = d.client
    for i in range(n):
        cfg = pod_config("bench-%d" % i, host_network=host_network)
        t0 = time.perf_counter()
        pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg)).pod_sandbox_id
        t1 = time.perf_counter()
        c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
        t2 = time.perf_counter()
        c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
        t3 = time.perf_counter()
        for k, v in (("run", t1 - t0), ("stop", t2 - t1), ("remove", t3 - t2),
                     ("total", t3 - t0)):
            times[k].append(v * 1000)
    return {k: {"median_ms": round(statistics.median(v), 2), "p95_ms": round(p95(v), 2)}
            for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    shared_before = any("CNI-HOSTPORT" in r[1] for r in iptables_rules())
    d = CrispDaemon(None)
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    results = {}
    try:
        d.start()
        run_series(d, 3, True)  # warm-up
        results["host-network"] = run_series(d, args.n, True)
        results["cni"] = run_series(d, args.n, False)
    finally:
        leaks = d.cleanup()
        subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
        if not shared_before:
            remove_shared_portmap_chains()
    if args.json:
        print(json.dumps({"n": args.n, "results": results}, indent=2))
    else:
        print("pods: %d per series" % args.n)
        for name, r in results.items():
            print("%-13s " % name + "  ".join("%s %.1f/%.1f ms" % (k, v["median_ms"], v["p95_ms"])
                                              for k, v in r.items()) + "  (median/p95)")
    if leaks:
        print("leaked mounts: %s" % leaks, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
