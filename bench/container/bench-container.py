#!/usr/bin/python3
"""Container lifecycle latency through crisp beside the OCI runtime alone.

N pods with one container each, through CRI: RunPodSandbox (host network), CreateContainer,
StartContainer, StopContainer (timeout 0), RemoveContainer, StopPodSandbox+RemovePodSandbox;
median and p95 per step, and crisp's own CPU time (utime+stime of the daemon from
/proc/PID/stat, before and after the series) per container.

The floor, in the same run and interleaved with crisp's cycles so both see the same machine:
`runc create`, `start`, `kill KILL` (+ wait until stopped), `delete` of a bundle holding the
same busybox image (its layer unpacked with Python's tarfile, `runc spec` edited to run the
same command in the host network namespace).  The overhead per container is crisp's
create+start+stop+remove against runc's create+start+kill+delete (medians); the aim is
under 15 ms.

Usage (root): CRISP_BUILDDIR=/path/to/build bench/container/bench-container.py [-n 50] [--json]
"""
import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from bench_env import host_pod_configs  # noqa: E402
from cri_client import pb  # noqa: E402
from crisp_daemon import CrispDaemon  # noqa: E402
from image_harness import pull, registries_conf  # noqa: E402
from registry_harness import Registry, build_images, import_builder  # noqa: E402

COMMAND = ["sleep", "3600"]
RUNC = shutil.which("runc") or "/usr/sbin/runc"
TICK = os.sysconf("SC_CLK_TCK")


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def summary(values):
    return {"median_ms": round(statistics.median(values), 2), "p95_ms": round(p95(values), 2)}


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / TICK


# ---- the runc floor ----

def make_bundle(path):
    """A runc bundle of the busybox test image running COMMAND in the host network."""
    build = import_builder()
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(rootfs)
    tar = build.layer_tar(build.busybox_layer())
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(rootfs)
    subprocess.run([RUNC, "spec"], cwd=path, check=True)
    with open(os.path.join(path, "config.json")) as f:
        spec = json.load(f)
    spec["process"]["terminal"] = False
    spec["process"]["args"] = COMMAND
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                   if n["type"] != "network"]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f)


def runc(root, *args):
    # No pipes: `runc create` hands its stdio to the container, which would hold a pipe open.
    res = subprocess.run([RUNC, "--root", root, *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError("runc %s failed with %d" % (" ".join(args), res.returncode))


def running(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def runc_cycle(root, bundle, cid, times):
    pid_file = os.path.join(root, cid + ".pid")
    t0 = time.perf_counter()
    runc(root, "create", "--bundle", bundle, "--pid-file", pid_file, cid)
    t1 = time.perf_counter()
    runc(root, "start", cid)
    t2 = time.perf_counter()
    with open(pid_file) as f:
        pid = int(f.read())
    runc(root, "kill", cid, "KILL")
    while running(pid):  # what a monitor learns at once from its child's exit
        time.sleep(0.0005)
    t3 = time.perf_counter()
    os.unlink(pid_file)
    runc(root, "delete", cid)
    t4 = time.perf_counter()
    for k, v in (("create", t1 - t0), ("start", t2 - t1), ("kill", t3 - t2),
                 ("delete", t4 - t3), ("total", t4 - t0)):
        times[k].append(v * 1000)


# ---- crisp ----

def crisp_cycle(d, image, logdir, i, times):
    c = d.client
    name = "bench-%d" % i
    pod_cfg, cfg = host_pod_configs(name, logdir, image, COMMAND)
    t0 = time.perf_counter()
    pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg)).pod_sandbox_id
    t1 = time.perf_counter()
    cid = c.call("CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg)).container_id
    t2 = time.perf_counter()
    c.call("StartContainer", pb.StartContainerRequest(container_id=cid))
    t3 = time.perf_counter()
    c.call("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0))
    t4 = time.perf_counter()
    c.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid))
    t5 = time.perf_counter()
    c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    t6 = time.perf_counter()
    for k, v in (("run pod", t1 - t0), ("create", t2 - t1), ("start", t3 - t2),
                 ("stop", t4 - t3), ("remove", t5 - t4), ("stop+rm pod", t6 - t5),
                 ("container total", t5 - t1), ("total", t6 - t0)):
        times[k].append(v * 1000)


def run(n, warmup):
    tmp = tempfile.mkdtemp(prefix="crisp-bench-ctr-")
    runc_root = os.path.join(tmp, "runc-root")
    bundle = os.path.join(tmp, "bundle")
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    os.makedirs(runc_root)
    make_bundle(bundle)
    images = build_images(os.path.join(tmp, "images"), ["busybox"])
    d = None
    crisp_t = {k: [] for k in ("run pod", "create", "start", "stop", "remove", "stop+rm pod",
                               "container total", "total")}
    runc_t = {k: [] for k in ("create", "start", "kill", "delete", "total")}
    cpu = None
    try:
        with Registry() as reg:
            reg.push(images["busybox"]["dir"], "latest", "busybox", "latest")
            image = reg.host + "/busybox:latest"
            d = CrispDaemon(os.path.join(tmp, "crisp"),
                            "[crisp]\nlog-level = info\n")
            with open(os.path.join(d.registries_dir, "50-bench.conf"), "w") as f:
                f.write(registries_conf(reg.host))
            d.start()
            pull(d, image)
            for i in range(warmup):
                crisp_cycle(d, image, logdir, -1 - i, {k: [] for k in crisp_t})
                runc_cycle(runc_root, bundle, "warm-%d" % i, {k: [] for k in runc_t})
            cpu0 = cpu_ms(d.proc.pid)
            crisp_wall = 0.0
            for i in range(n):
                runc_cycle(runc_root, bundle, "bench-%d" % i, runc_t)
                t = time.perf_counter()
                crisp_cycle(d, image, logdir, i, crisp_t)
                crisp_wall += time.perf_counter() - t
            cpu = (cpu_ms(d.proc.pid) - cpu0) / n
    finally:
        leaks = d.cleanup() if d else []
        for cid in subprocess.run([RUNC, "--root", runc_root, "list", "-q"],
                                  capture_output=True, text=True).stdout.split():
            subprocess.run([RUNC, "--root", runc_root, "delete", "--force", cid])
        shutil.rmtree(tmp, ignore_errors=True)
    crisp_s = {k: summary(v) for k, v in crisp_t.items()}
    runc_s = {k: summary(v) for k, v in runc_t.items()}
    overhead = crisp_s["container total"]["median_ms"] - runc_s["total"]["median_ms"]
    return {"n": n, "crisp": crisp_s, "runc": runc_s, "crisp_cpu_ms_per_container": round(cpu, 2),
            "overhead_ms_per_container": round(overhead, 2), "leaks": leaks}


def print_table(r):
    print("containers: %d (one per pod), command %s" % (r["n"], " ".join(COMMAND)))
    print("%-18s %10s %10s" % ("crisp (CRI)", "median ms", "p95 ms"))
    for k, v in r["crisp"].items():
        print("%-18s %10.1f %10.1f" % (k, v["median_ms"], v["p95_ms"]))
    print("%-18s %10s %10s" % ("runc alone", "median ms", "p95 ms"))
    for k, v in r["runc"].items():
        print("%-18s %10.1f %10.1f" % (k, v["median_ms"], v["p95_ms"]))
    print("crisp CPU time per container (whole cycle, daemon only): %.1f ms"
          % r["crisp_cpu_ms_per_container"])
    print("overhead per container over runc (create+start+stop+remove medians): %.1f ms "
          "(aim: < 15 ms)" % r["overhead_ms_per_container"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    r = run(args.n, args.warmup)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)
    if r["leaks"]:
        print("leaked mounts: %s" % r["leaks"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
