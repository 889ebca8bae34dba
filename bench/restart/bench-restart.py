#!/usr/bin/python3
"""How soon crisp serves again after a kill -9, with N running containers.

It starts a crisp of the build tree with a local registry, runs N host-network pods with one
busybox `sleep 3600` container each, then R times: SIGKILL crisp, start it again, and time,
from the moment the new process is spawned:

- *listening*: the socket accepts a connection;
- *Version*: the first CRI call is answered;
- *all listed*: ListContainers (state RUNNING) names all N containers;
- *ExecSync*: `true` runs in one of them (a different one each time) and exits 0;
- *statuses*: ContainerStatus of every container answered, each RUNNING with its pid.

Alongside, the CPU time (utime + stime) the new crisp spent until all of that was done.  Every
container must keep running through every kill (its init pid unchanged); the bench fails
otherwise.  Everything is removed afterwards and crisp's leak check runs (exit 1 on a leak).

Usage (root, in a network namespace of its own):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 bench/restart/bench-restart.py \
        [-n 100] [-r 10] [--json]'
(`CRISP_BUILDDIR=/path/to/_build` when the build is not in the source tree.)
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

from bench_env import busybox_crisp, host_pod_configs  # noqa: E402
from cri_client import CRIClient, pb  # noqa: E402
from crashcheck import sanitizer_env  # noqa: E402

COMMAND = ["sleep", "3600"]
PHASES = ("listening", "Version", "all listed", "ExecSync", "statuses", "CPU ms")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def p90(xs):
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]


def cpu_ms(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / CLK_TCK


def accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def until(fn, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fn():
                return time.monotonic()
        except Exception as e:  # noqa: BLE001 (not serving yet)
            if time.monotonic() > deadline:
                raise RuntimeError("%s: %s" % (what, e)) from e
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not happen within %ds" % (what, timeout))
        time.sleep(0.001)


def populate(env, n):
    ids = []
    for i in range(n):
        pod_cfg, cfg = host_pod_configs("r%d" % i, env.logdir, env.busybox, COMMAND)
        pod = env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg)).pod_sandbox_id
        cid = env.c.call("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg)).container_id
        env.c.call("StartContainer", pb.StartContainerRequest(container_id=cid))
        ids.append(cid)
    return ids


def one_restart(d, ids, pids, k):
    """SIGKILLs crisp, starts it, returns the phase times in ms."""
    d.kill9()
    os.unlink(d.sock)  # as the harness does: the new crisp makes its own
    log = open(d.log_path, "ab")
    t0 = time.monotonic()
    d.proc = subprocess.Popen(d.command(), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                              start_new_session=True, env=sanitizer_env(os.environ, d.san_dir))
    log.close()
    t = {"listening": until(lambda: accepts(d.sock), "listening")}
    c = CRIClient(d.sock, d.ids)
    d.client = c
    t["Version"] = until(lambda: c.call("Version", pb.VersionRequest(), timeout=10), "Version")

    def all_listed():
        r = c.call("ListContainers", pb.ListContainersRequest(filter=pb.ContainerFilter(
            state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))), timeout=10)
        return {x.id for x in r.containers} >= set(ids)
    t["all listed"] = until(all_listed, "all containers listed running")
    probe = ids[k % len(ids)]
    r = c.call("ExecSync", pb.ExecSyncRequest(container_id=probe, cmd=["true"], timeout=10),
               timeout=20)
    if r.exit_code != 0:
        raise RuntimeError("ExecSync true in %s exited %d" % (probe[:12], r.exit_code))
    t["ExecSync"] = time.monotonic()
    for cid in ids:
        st = c.call("ContainerStatus", pb.ContainerStatusRequest(container_id=cid, verbose=True))
        if st.status.state != pb.CONTAINER_RUNNING:
            raise RuntimeError("container %s is not running after the restart" % cid[:12])
        info = json.loads(st.info.get("info", "{}"))
        if pids.get(cid) is not None and info.get("pid") != pids[cid]:
            raise RuntimeError("container %s: init pid %s, was %s" % (cid[:12], info.get("pid"),
                                                                      pids[cid]))
    t["statuses"] = time.monotonic()
    out = {k2: (v - t0) * 1000.0 for k2, v in t.items()}
    out["CPU ms"] = cpu_ms(d.proc.pid)
    return out


def pids_of(env, ids):
    out = {}
    for cid in ids:
        st = env.c.call("ContainerStatus", pb.ContainerStatusRequest(container_id=cid,
                                                                     verbose=True))
        out[cid] = json.loads(st.info.get("info", "{}")).get("pid")
    return out


def run(args):
    leaks, samples = [], []
    config = "[crisp]\nlog-level = info\n"
    with busybox_crisp("crisp-bench-restart-", config, leaks) as env:
        ids = populate(env, args.n)
        pids = pids_of(env, ids)
        for k in range(args.r):
            samples.append(one_restart(env.d, ids, pids, k))
    return {"containers": args.n, "restarts": args.r, "leaks": leaks,
            "phases": {p: {"median": round(statistics.median(s[p] for s in samples), 2),
                           "p90": round(p90([s[p] for s in samples]), 2)} for p in PHASES}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100, help="running containers")
    ap.add_argument("-r", type=int, default=10, help="kill -9 and restarts")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    r = run(args)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print("%d running containers, %d kill -9 + restart; ms from spawn, median / p90"
              % (r["containers"], r["restarts"]))
        for p in PHASES:
            print("%-12s %8.1f / %8.1f" % (p, r["phases"][p]["median"], r["phases"][p]["p90"]))
    for leak in r["leaks"]:
        print("left behind: %s" % leak, file=sys.stderr)
    sys.exit(1 if r["leaks"] else 0)


if __name__ == "__main__":
    main()
