#!/usr/bin/python3
"""The CPU crisp spends to keep a kubelet's pod cache true: relisting every second (the
generic PLEG: ListPodSandbox + ListContainers each second) against one GetContainerEvents
subscriber (the Evented PLEG), on a node of P pods with C containers each.

Each phase lasts T seconds and is measured as crisp's own CPU time (utime + stime of the crisp
process, /proc/PID/stat) over the phase, in ms of CPU per second of wall time:
  - idle + relist:      nothing changes; the client relists every second;
  - idle + events:      nothing changes; one subscriber is connected;
  - churn + relist:     every second one container is created, started, stopped and removed
                        in a pod of its own; the client relists every second;
  - churn + events:     the same churn; one subscriber gets its events.
The churn's own cost is in both churn phases alike; their difference is what each way of
keeping the cache costs.  Phases alternate over R rounds; the median of each is shown.

Usage (root, in a fresh network namespace as the tests run):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 bench/events/bench-events.py \\
        [-p 20] [-c 3] [-t 20] [-r 3] [--json]'
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from bench_env import busybox_crisp  # noqa: E402
from container_harness import SLEEPER  # noqa: E402
from cri_client import CRIClient, pb  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PHASES = ("idle + relist", "idle + events", "churn + relist", "churn + events")


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TICK


def relist(client):
    client.call("ListPodSandbox", pb.ListPodSandboxRequest())
    client.call("ListContainers", pb.ListContainersRequest())


class Subscriber(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.client = CRIClient(sock)
        self.stream = self.client.stream("GetContainerEvents", pb.GetEventsRequest(),
                                         timeout=3600)
        self.count = 0
        self.start()

    def run(self):
        try:
            for _ in self.stream:
                self.count += 1
        except Exception:
            pass

    def close(self):
        self.stream.cancel()
        self.join(10)
        self.client.close()


def churn_once(env, i):
    pod = env.run_pod("churn%d" % i)
    cid = env.run(pod, "c", command=SLEEPER)
    env.stop(cid, timeout=0)
    env.remove(cid)
    env.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    env.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def phase(env, name, seconds, counter):
    """-> crisp's CPU ms per second of wall time over the phase."""
    pid = env.d.proc.pid
    churn, events = name.startswith("churn"), name.endswith("events")
    sub = Subscriber(env.d.sock) if events else None
    time.sleep(0.5)
    c0, t0 = cpu_ms(pid), time.monotonic()
    for k in range(seconds):
        tick = t0 + k + 1
        if churn:
            counter[0] += 1
            churn_once(env, counter[0])
        if not events:
            relist(env.c)
        time.sleep(max(0, tick - time.monotonic()))
    c1, t1 = cpu_ms(pid), time.monotonic()
    if sub:
        sub.close()
    return (c1 - c0) / (t1 - t0)


def run(pods, per_pod, seconds, rounds):
    leaks = []
    result = {"pods": pods, "containers_per_pod": per_pod, "seconds": seconds, "rounds": rounds}
    with busybox_crisp("crisp-bench-events-", "[crisp]\nlog-level = warning\n", leaks) as env:
        for p in range(pods):
            pod = env.run_pod("node%d" % p)
            for c in range(per_pod):
                env.run(pod, "c%d" % c, command=SLEEPER)
        samples = {name: [] for name in PHASES}
        counter = [0]
        for r in range(rounds):
            for name in PHASES[r % 4:] + PHASES[:r % 4]:
                samples[name].append(phase(env, name, seconds, counter))
        result["cpu_ms_per_s"] = {k: round(statistics.median(v), 2) for k, v in samples.items()}
        result["samples"] = {k: [round(x, 2) for x in v] for k, v in samples.items()}
    result["leaks"] = leaks
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-p", type=int, default=20, help="pods on the node")
    ap.add_argument("-c", type=int, default=3, help="running containers per pod")
    ap.add_argument("-t", type=int, default=20, help="seconds per phase")
    ap.add_argument("-r", type=int, default=3, help="rounds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    r = run(args.p, args.c, args.t, args.r)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print("crisp CPU, ms per second, %d pods x %d running containers, median of %d rounds "
              "of %d s" % (r["pods"], r["containers_per_pod"], r["rounds"], r["seconds"]))
        for k in PHASES:
            print("  %-16s %8.2f   %s" % (k, r["cpu_ms_per_s"][k], r["samples"][k]))
    if r["leaks"]:
        print("left behind: %s" % r["leaks"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
