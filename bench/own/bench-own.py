#!/usr/bin/python3
"""crisp's own time per CRI step: the container steps with a stand-in OCI runtime (a small C
program, stand-in-runtime.c, that forks a waiting process and does nothing else), so that
runc's 20-60 ms and their spread are out of the figure and what is left is crisp's, its
monitor's and the gRPC round trip's.  One column per --crisp build, rounds alternated.

One round of a build: RunPodSandbox (host network: no CNI), CreateContainer, StartContainer,
StopContainer (timeout 0), RemoveContainer, StopPodSandbox, RemovePodSandbox.  The stand-in
logs its own lifetime per call; the table gives its median per step beside the step's.

Usage (root, in a fresh network namespace):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 bench/own/bench-own.py \
        [-n 100] [--crisp NAME=BUILDDIR ...] [--json]'
It needs a C compiler (cc) for the stand-in.  Everything it made is removed at the end.
"""
import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

import crisp_daemon  # noqa: E402
from bench_env import load_bench_steps  # noqa: E402
from cri_client import pb  # noqa: E402
from image_harness import registries_conf  # noqa: E402
from registry_harness import Registry  # noqa: E402


steps_mod = load_bench_steps()

STEPS = ["RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
         "RemoveContainer", "StopPodSandbox", "RemovePodSandbox"]
# The stand-in's commands a step may run (the monitor's included): crisp stops a container
# with its own signal, and the monitor runs `delete` when the container exits (after
# StopContainer answered); RemoveContainer's `delete` finds nothing left.
STAND_IN = {"CreateContainer": ["create"], "StartContainer": ["start"],
            "RemoveContainer": ["delete"]}


def build_stand_in(tmp):
    out = os.path.join(tmp, "stand-in-runtime")
    subprocess.run(["cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, "stand-in-runtime.c")],
                   check=True)
    return out


def configs(name, logdir, image):
    pod_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="bench-own"),
        log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))))
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                             image=pb.ImageSpec(image=image), command=["sleep", "3600"],
                             log_path="%s.log" % name)
    return pod_cfg, cfg


def one_round(c, image, logdir, name, times):
    def timed(step, method, req):
        t = time.perf_counter()
        resp = c.call(method, req, 60)
        times[step].append((time.perf_counter() - t) * 1000)
        return resp

    pod_cfg, cfg = configs(name, logdir, image)
    pod = timed("RunPodSandbox", "RunPodSandbox",
                pb.RunPodSandboxRequest(config=pod_cfg)).pod_sandbox_id
    cid = timed("CreateContainer", "CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg)).container_id
    timed("StartContainer", "StartContainer", pb.StartContainerRequest(container_id=cid))
    timed("StopContainer", "StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0))
    timed("RemoveContainer", "RemoveContainer", pb.RemoveContainerRequest(container_id=cid))
    timed("StopPodSandbox", "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    timed("RemovePodSandbox", "RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))


def stand_in_times(daemon):
    """{command: [ms]} from the stand-in's own log under this daemon's runtime root."""
    out = collections.defaultdict(list)
    path = os.path.join(daemon.run_root, "runtime", "runc", "times")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                cmd, ms = line.split()
                out[cmd].append(float(ms))
    return out


def run(args):
    builds = args.crisp or [("crisp", crisp_daemon.BUILDDIR)]
    tmp = tempfile.mkdtemp(prefix="bench-own-")
    stack = []
    try:
        stand_in = build_stand_in(tmp)
        with Registry() as reg:
            refs = steps_mod.push_images(reg, tmp)
            daemons = []
            for name, builddir in builds:
                d = steps_mod.BuildDaemon(os.path.join(tmp, "crisp-" + name), builddir,
                                          "[runtime.runc]\npath = %s\n" % stand_in)
                stack.append(d)
                with open(os.path.join(d.registries_dir, "50-bench.conf"), "w") as f:
                    f.write(registries_conf(reg.host))
                d.start()
                d.client.call("PullImage", pb.PullImageRequest(
                    image=pb.ImageSpec(image=refs["busybox"])), 120)
                daemons.append((name, d))
            logdir = os.path.join(tmp, "logs")
            os.makedirs(logdir)
            times = {name: collections.defaultdict(list) for name, _ in daemons}
            for i in range(args.warmup + args.n):
                order = daemons[i % len(daemons):] + daemons[:i % len(daemons)]
                for name, d in order:
                    t = times[name] if i >= args.warmup else collections.defaultdict(list)
                    one_round(d.client, refs["busybox"], logdir, "r%d" % i, t)
                    time.sleep(0.02)
            result = {"rounds": args.n, "steps": {}, "stand_in": {}}
            for name, d in daemons:
                result["steps"][name] = {s: times[name][s] for s in STEPS}
                result["stand_in"][name] = stand_in_times(d)
            return result
    finally:
        steps_mod.stop_runtimes(stack)
        shutil.rmtree(tmp, ignore_errors=True)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def print_table(r):
    names = list(r["steps"])
    print("rounds %d (alternated); median / p90 ms, and the stand-in's own median" % r["rounds"])
    print("%-18s" % "step" + "".join("%24s" % n for n in names))
    for step in STEPS:
        row = "%-18s" % step
        for n in names:
            xs = r["steps"][n][step]
            own = sum(med(r["stand_in"][n].get(cmd, [])) for cmd in STAND_IN.get(step, []))
            row += "%14.2f / %-6.2f" % (med(xs), steps_mod.p90(xs))
            row += "(%4.1f)" % own if step in STAND_IN else "      "
        print(row)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100, help="rounds per build")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--crisp", type=steps_mod.build_arg, action="append",
                    help="NAME=BUILDDIR, once per build to compare")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args)
    if args.json:
        print(json.dumps(r))
    else:
        print_table(r)


if __name__ == "__main__":
    main()
