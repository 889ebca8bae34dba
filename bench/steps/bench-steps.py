#!/usr/bin/python3
"""Each CRI step of a container's and an image's life, crisp beside containerd, in one run.

Per round, every runtime (one or more crisp builds, and Debian's containerd when installed)
runs, in an order that rotates from round to round so all see the same machine:

- container: RunPodSandbox (host network), CreateContainer, StartContainer, K x
  ContainerStatus of the running container, StopContainer (timeout 0), RemoveContainer,
  StopPodSandbox + RemovePodSandbox;
- image: PullImage of a three-layer image no container uses, K x ImageStatus, RemoveImage;
- exec: E x ExecSync of `true` in the running container (before StopContainer): wall time, and
  CPU per probe of the daemon plus the container's monitor (crisp) or shim (containerd) and
  every child they reaped (utime+stime+cutime+cstime from /proc); for crisp also E x `runc
  exec` of the same container straight from this script, the runtime's own cost (its floor).

Medians and p90 per step and runtime, and each step's ratio to containerd's.  containerd runs
with a configuration of its own (root, state, sockets, runc root, registry hosts all under the
run's temporary directory; its CRI plugin sandbox image is a busybox `sleep` image from the
same local registry), is started by the script and stopped by pid afterwards.

Usage (root, in a network namespace of its own):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 bench/steps/bench-steps.py \
        [-n 20] [-k 5] [-e 10] [--crisp NAME=BUILDDIR ...] [--runc-exec] [--no-containerd] \
        [--json]'
--runc-exec adds a column NAME-runcexec per build, with `runtime.exec-direct = false`.
Without --crisp, the build in CRISP_BUILDDIR (or the source tree) is measured as "crisp".
"""
import argparse
import glob
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "integration"))

import crisp_daemon  # noqa: E402
from bench_env import host_pod_configs  # noqa: E402
from cri_client import CRIClient, pb  # noqa: E402
from image_harness import registries_conf  # noqa: E402
from registry_harness import Registry, build_images, import_builder  # noqa: E402

CONTAINERD = "/usr/bin/containerd"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
COMMAND = ["sleep", "3600"]
CONTAINER_STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer", "ContainerStatus",
                   "StopContainer", "RemoveContainer", "StopPodSandbox+RemovePodSandbox")
IMAGE_STEPS = ("PullImage", "ImageStatus", "RemoveImage")
EXEC_STEPS = ("ExecSync", "ExecSync CPU", "runc exec CPU")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def p90(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


class BuildDaemon(crisp_daemon.CrispDaemon):
    """A crisp daemon of a given build tree (the harness's is fixed at import)."""

    def __init__(self, tmpdir, builddir, config=""):
        self.builddir = builddir
        super().__init__(tmpdir, "[crisp]\nlog-level = info\n" + config)

    def base_config(self):
        return super().base_config().replace(
            crisp_daemon.CONMON, os.path.join(self.builddir, "crisp-conmon"))

    def command(self, *extra):
        cmd = super().command(*extra)
        cmd[0] = os.path.join(self.builddir, "crisp")
        return cmd


CONTAINERD_CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{d}/certs.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{d}/runc"
"""


def k8s_cgroups():
    return set(glob.glob("/sys/fs/cgroup/*/k8s.io") + glob.glob("/sys/fs/cgroup/k8s.io"))


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


class Containerd:
    """Debian's containerd on a configuration of its own, stopped by pid."""

    def __init__(self, tmp, registry_host, pause_image):
        self.dir = os.path.join(tmp, "containerd")
        self.sock = os.path.join(self.dir, "containerd.sock")
        hosts = os.path.join(self.dir, "certs.d", registry_host)
        for d in (hosts, os.path.join(self.dir, "cni")):
            os.makedirs(d)
        with open(os.path.join(hosts, "hosts.toml"), "w") as f:
            f.write('server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", '
                    '"resolve"]\n' % (registry_host, registry_host))
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(CONTAINERD_CONFIG.format(d=self.dir, pause=pause_image, runc=RUNC))
        self.proc = None
        self.client = None

    def start(self, timeout=30):
        self.cgroups_before = k8s_cgroups()
        log = open(os.path.join(self.dir, "containerd.log"), "ab")
        self.proc = subprocess.Popen([CONTAINERD, "--config", self.config], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("containerd exited with %d" % self.proc.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError("containerd's CRI did not answer within %ds" % timeout)
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.sock)
                    self.client = self.client or CRIClient(self.sock)
                    self.client.call("Version", pb.VersionRequest(), timeout=2)
                    return self
                except Exception:  # noqa: BLE001 (the CRI plugin may not be up yet)
                    pass
                finally:
                    s.close()
            time.sleep(0.05)

    def stop(self):
        if self.client is not None:
            remove_all(self.client)
            self.client.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for m in reversed(mounts_under(self.dir)):
            subprocess.run(["umount", "-l", m])
        # Its CRI plugin makes a "k8s.io" cgroup parent in every hierarchy and leaves it.
        for d in sorted(k8s_cgroups() - getattr(self, "cgroups_before", k8s_cgroups())):
            try:
                os.rmdir(d)
            except OSError:
                pass
        return mounts_under(self.dir)


def remove_all(client):
    for pod in client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items:
        client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), 60)
        client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id), 60)


class Timer:
    def __init__(self, times):
        self.times = times

    def __call__(self, step, fn, *args):
        t = time.perf_counter()
        r = fn(*args)
        self.times.setdefault(step, []).append((time.perf_counter() - t) * 1000)
        return r


def cpu_ticks(pids):
    """utime+stime+cutime+cstime of pids (those still there), in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total


def pids_naming(ids):
    """Processes whose command line names one of ids: crisp's monitor, containerd's shim."""
    found = []
    for d in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        if any(i.encode() in argv for i in ids):
            found.append(int(d))
    return found


def exec_cycle(c, rt, pod, cid, e, timed, times):
    pids = [rt["pid"]] + pids_naming([pod, cid])
    before = cpu_ticks(pids)
    for _ in range(e):
        r = timed("ExecSync", c.call, "ExecSync",
                  pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10), 30)
        assert r.exit_code == 0, r
    times.setdefault("ExecSync CPU", []).append(
        (cpu_ticks(pids) - before) * 1000.0 / CLK_TCK / e)
    if rt.get("runc_root"):
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        for _ in range(e):
            subprocess.run([RUNC, "--root", rt["runc_root"], "exec", cid, "true"], check=True)
        ru2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        times.setdefault("runc exec CPU", []).append(
            (ru2.ru_utime + ru2.ru_stime - ru.ru_utime - ru.ru_stime) * 1000.0 / e)


def container_cycle(c, image, logdir, name, k, times, rt=None, e=0):
    timed = Timer(times)
    pod_cfg, cfg = host_pod_configs(name, logdir, image, COMMAND)
    pod = timed("RunPodSandbox", c.call, "RunPodSandbox",
                pb.RunPodSandboxRequest(config=pod_cfg), 60).pod_sandbox_id
    cid = timed("CreateContainer", c.call, "CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
    timed("StartContainer", c.call, "StartContainer", pb.StartContainerRequest(container_id=cid))
    for _ in range(k):
        st = timed("ContainerStatus", c.call, "ContainerStatus",
                   pb.ContainerStatusRequest(container_id=cid)).status
        assert st.state == pb.CONTAINER_RUNNING, st
    if e > 0:
        exec_cycle(c, rt, pod, cid, e, timed, times)
    timed("StopContainer", c.call, "StopContainer",
          pb.StopContainerRequest(container_id=cid, timeout=0))
    timed("RemoveContainer", c.call, "RemoveContainer", pb.RemoveContainerRequest(container_id=cid))

    def pod_down():
        c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
        c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)
    timed("StopPodSandbox+RemovePodSandbox", pod_down)


def image_cycle(c, image, k, times):
    timed = Timer(times)
    spec = pb.ImageSpec(image=image)
    timed("PullImage", c.call, "PullImage", pb.PullImageRequest(image=spec), 120)
    for _ in range(k):
        st = timed("ImageStatus", c.call, "ImageStatus", pb.ImageStatusRequest(image=spec))
        assert st.image.id, st
    timed("RemoveImage", c.call, "RemoveImage", pb.RemoveImageRequest(image=spec))


def push_images(reg, tmp):
    images = build_images(os.path.join(tmp, "images"), ["busybox", "multilayer"])
    build = import_builder()
    pause_dir = os.path.join(tmp, "images", "pause")
    build.build_image(pause_dir, [build.busybox_layer()],
                      dict(build.BUSYBOX_CONFIG, Cmd=["sleep", "infinity"]))
    reg.push(images["busybox"]["dir"], "latest", "busybox", "latest")
    reg.push(images["multilayer"]["dir"], "latest", "multilayer", "latest")
    reg.push(pause_dir, "latest", "pause", "latest")
    return {n: "%s/%s:latest" % (reg.host, n) for n in ("busybox", "multilayer", "pause")}


def start_runtimes(tmp, reg, refs, builds, with_containerd, stack, info):
    runtimes = {}
    for name, builddir, config in builds:
        d = BuildDaemon(os.path.join(tmp, "crisp-" + name), builddir, config)
        with open(os.path.join(d.registries_dir, "50-bench.conf"), "w") as f:
            f.write(registries_conf(reg.host))
        stack.append(d)
        runtimes[name] = d.start().client
        info[name] = {"pid": d.proc.pid,
                      "runc_root": os.path.join(d.run_root, "runtime", "runc")}
    if with_containerd:
        ctd = Containerd(tmp, reg.host, refs["pause"])
        stack.append(ctd)
        runtimes["containerd"] = ctd.start().client
        info["containerd"] = {"pid": ctd.proc.pid}
    for client in runtimes.values():
        client.call("PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=refs["busybox"])),
                    120)
    return runtimes


def stop_runtimes(stack):
    problems = []
    for r in reversed(stack):
        if isinstance(r, Containerd):
            left = r.stop()
            problems += ["containerd left mount %s" % m for m in left]
        else:
            problems += [str(x) for x in r.cleanup()]
    return problems


def run(args):
    tmp = tempfile.mkdtemp(prefix="crisp-bench-steps-")
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    builds = [(n, b, "") for n, b in args.crisp or [("crisp", crisp_daemon.BUILDDIR)]]
    if args.runc_exec:
        builds += [(n + "-runcexec", b, "[runtime]\nexec-direct = false\n") for n, b, _ in builds]
    with_containerd = not args.no_containerd and os.path.exists(CONTAINERD)
    stack, times, info = [], {}, {}
    try:
        with Registry() as reg:
            refs = push_images(reg, tmp)
            runtimes = start_runtimes(tmp, reg, refs, builds, with_containerd, stack, info)
            names = list(runtimes)
            for name in names:
                times[name] = {}
            for rnd in range(-args.warmup, args.n):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for name in order:
                    t = times[name] if rnd >= 0 else {}
                    container_cycle(runtimes[name], refs["busybox"], logdir,
                                    "b%s-%d" % (name, rnd + args.warmup), args.k, t,
                                    info[name], args.e)
                    image_cycle(runtimes[name], refs["multilayer"], args.k, t)
    finally:
        problems = stop_runtimes(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"n": args.n, "k": args.k, "e": args.e, "containerd": with_containerd, "problems": problems,
            "steps": {name: {s: {"median_ms": round(statistics.median(v), 3),
                                 "p90_ms": round(p90(v), 3)} for s, v in t.items()}
                      for name, t in times.items()}}


def print_table(r):
    names = list(r["steps"])
    print("rounds %d, %d ContainerStatus / ImageStatus calls and %d ExecSync per round; "
          "median / p90 ms (CPU rows: ms of CPU per probe)" % (r["n"], r["k"], r["e"]))
    print("%-32s" % "step" + "".join("%22s" % n for n in names)
          + ("".join("%14s" % ("%s/ctrd" % n) for n in names if n != "containerd")
             if r["containerd"] else ""))
    for step in CONTAINER_STEPS + IMAGE_STEPS + (EXEC_STEPS if r["e"] else ()):
        row = "%-32s" % step
        for n in names:
            s = r["steps"][n].get(step)
            row += "%22s" % ("%.2f / %.2f" % (s["median_ms"], s["p90_ms"]) if s else "-")
        if r["containerd"] and step in r["steps"]["containerd"]:
            base = r["steps"]["containerd"][step]["median_ms"]
            for n in names:
                if n != "containerd" and step in r["steps"][n]:
                    row += "%14.2f" % (r["steps"][n][step]["median_ms"] / base)
        print(row)
    if not r["containerd"]:
        print("no containerd column: %s" % ("--no-containerd" if os.path.exists(CONTAINERD)
                                            else CONTAINERD + " is not installed"))


def build_arg(text):
    name, sep, path = text.partition("=")
    if not sep or not os.path.exists(os.path.join(path, "crisp")):
        raise argparse.ArgumentTypeError("expected NAME=BUILDDIR with BUILDDIR/crisp: '%s'" % text)
    return name, os.path.abspath(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20, help="rounds")
    ap.add_argument("-k", type=int, default=5, help="status calls per round")
    ap.add_argument("-e", type=int, default=10, help="ExecSync probes per round (0: none)")
    ap.add_argument("--runc-exec", action="store_true",
                    help="also each build with runtime.exec-direct = false")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--crisp", type=build_arg, action="append",
                    help="NAME=BUILDDIR, one column per build (repeatable)")
    ap.add_argument("--no-containerd", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    r = run(args)
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print_table(r)
    for p in r["problems"]:
        print("problem: %s" % p, file=sys.stderr)
    return 1 if r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
