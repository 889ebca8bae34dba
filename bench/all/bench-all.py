#!/usr/bin/python3
"""Every CRI step of a pod's, a container's and an image's life: crisp beside containerd and
beside the floor (the runc and CNI calls that cannot be avoided, run by hand), in one run, and
CPU per ExecSync probe and memory of the daemons and their monitors / shims.

Rounds alternate crisp (one column per --crisp build), containerd and the floor, in an order
that rotates from round to round.  One round of a runtime is, on a pod with its own network
(the same bridge + host-local + portmap + loopback conflist for all three, each on its own
bridge and subnet):

    RunPodSandbox, CreateContainer, StartContainer, K x ContainerStatus, PodSandboxStatus,
    ListContainers and ExecSync(`true`), StopContainer (timeout 0), RemoveContainer,
    StopPodSandbox, RemovePodSandbox, then PullImage of a small three-layer image, K x
    ImageStatus, RemoveImage.

The floor's round: CNI ADD in a scratch netns made beforehand (RunPodSandbox's floor), `runc
create` / `runc start` of a prepared busybox bundle, K x `runc exec ... true`, `runc kill
KILL` and the wait for the exit (through a pidfd), `runc delete`, CNI DEL.

Then, per runtime alone: CPU per ExecSync probe (utime + stime of the daemon, its monitors /
shims and the children they reaped, over P probes), and memory (RssAnon and VmRSS of the
daemon; total RSS of the monitors or shims) when fresh, after the rounds, with 20 pods of a
container each, and after they are torn down.

Usage (root, in a fresh network namespace):
    unshare -n sh -c 'ip link set lo up; exec /usr/bin/python3 bench/all/bench-all.py \
        [-n 10] [-k 5] [--probes 50] [--pods 20] [--lifecycles 0] [--crisp NAME=BUILDDIR ...] [--json]'
It stays out of the tests.  Everything it made is removed at the end, on Ctrl-C and SIGTERM too.
"""
import argparse
import copy
import json
import os
import random
import select
import shutil
import signal
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
from pod_harness import PLUGIN_DIRS, PodNet  # noqa: E402
from registry_harness import Registry  # noqa: E402


steps_mod = load_bench_steps()

RUNC = steps_mod.RUNC
p90 = steps_mod.p90
cpu_ticks = steps_mod.cpu_ticks  # utime stime cutime cstime
COMMAND = ["sleep", "3600"]
# Every runtime's CreateContainer again, beside a floor that runs `runc create` of the very
# spec crisp writes (its mounts, namespaces, cgroup, seccomp) where the plain floor runs
# `runc spec`'s default.
CRISP_SPEC_CREATE = "Create, crisp's spec"
STEPS = ("RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "CreateContainer",
         CRISP_SPEC_CREATE, "StartContainer", "Create+Start", "StopContainer",
         "RemoveContainer", "ContainerStatus", "PodSandboxStatus", "ListContainers", "ExecSync",
         "PullImage", "ImageStatus", "RemoveImage", "pod lifecycle", "container lifecycle")
POD_LIFE = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer",
            "RemoveContainer", "StopPodSandbox", "RemovePodSandbox")
CONTAINER_LIFE = ("CreateContainer", "StartContainer", "StopContainer", "RemoveContainer")


class Interrupted(Exception):
    pass


def _on_term(signum, frame):
    raise Interrupted("signal %d" % signum)


def run(*cmd, stdin=None, env=None):
    res = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True,
                         stdin=None if stdin is not None else subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError("%s failed (%d): %s %s" % (" ".join(cmd), res.returncode,
                                                      res.stdout.strip(), res.stderr.strip()))
    return res.stdout


class Rec:
    """Times of one round, step -> [ms]."""

    def __init__(self, times):
        self.times = times

    def add(self, step, ms):
        self.times.setdefault(step, []).append(ms)

    def __call__(self, step, fn, *args):
        t = time.perf_counter()
        r = fn(*args)
        self.add(step, (time.perf_counter() - t) * 1000)
        return r


def net_conflist(tmp, tag, subnet_prefix):
    """The test conflist on a bridge and subnet of its own."""
    net = PodNet(tmp)
    conf = copy.deepcopy(net.conflist)
    n = random.randint(1, 254)
    conf["name"] = "crisp-bench-%s-%d" % (tag, n)
    first = conf["plugins"][0]
    first["bridge"] = "cb%s%04x" % (tag[:3], random.randint(0, 0xffff))
    first["ipam"]["ranges"] = [[{"subnet": "%s.%d.0/24" % (subnet_prefix, n)}]]
    first["ipam"]["dataDir"] = os.path.join(tmp, "ipam-" + tag)
    return conf


def pod_configs(name, logdir, image):
    pod_cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="bench"),
        log_directory=logdir,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext(
            namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER,
                                                 ipc=pb.POD))))
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name="c"),
                             image=pb.ImageSpec(image=image), command=COMMAND,
                             log_path="%s.log" % name)
    return pod_cfg, cfg


# ---- CRI runtimes (crisp and containerd) ----

def cri_round(c, refs, logdir, name, k, times):
    rec = Rec(times)
    t0 = time.perf_counter()
    pod_cfg, cfg = pod_configs(name, logdir, refs["busybox"])
    pod = rec("RunPodSandbox", c.call, "RunPodSandbox",
              pb.RunPodSandboxRequest(config=pod_cfg), 60).pod_sandbox_id
    t1 = time.perf_counter()
    cid = rec("CreateContainer", c.call, "CreateContainer", pb.CreateContainerRequest(
        pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
    rec.add(CRISP_SPEC_CREATE, times["CreateContainer"][-1])
    rec("StartContainer", c.call, "StartContainer", pb.StartContainerRequest(container_id=cid),
        60)
    rec.add("Create+Start", (time.perf_counter() - t1) * 1000)
    for _ in range(k):
        st = rec("ContainerStatus", c.call, "ContainerStatus",
                 pb.ContainerStatusRequest(container_id=cid)).status
        assert st.state == pb.CONTAINER_RUNNING, st
    for _ in range(k):
        rec("PodSandboxStatus", c.call, "PodSandboxStatus",
            pb.PodSandboxStatusRequest(pod_sandbox_id=pod))
    for _ in range(k):
        rec("ListContainers", c.call, "ListContainers", pb.ListContainersRequest())
    for _ in range(k):
        r = rec("ExecSync", c.call, "ExecSync",
                pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10), 30)
        assert r.exit_code == 0, r
    lived = (time.perf_counter() - t1) * 1000
    t2 = time.perf_counter()
    rec("StopContainer", c.call, "StopContainer",
        pb.StopContainerRequest(container_id=cid, timeout=0), 60)
    rec("RemoveContainer", c.call, "RemoveContainer", pb.RemoveContainerRequest(container_id=cid),
        60)
    rec.add("container lifecycle", times["Create+Start"][-1]
            + (time.perf_counter() - t2) * 1000)
    rec("StopPodSandbox", c.call, "StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod),
        60)
    rec("RemovePodSandbox", c.call, "RemovePodSandbox",
        pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)
    # The probes in the middle are not part of a pod's life.
    rec.add("pod lifecycle", (time.perf_counter() - t0) * 1000 - lived
            + times["Create+Start"][-1])
    spec = pb.ImageSpec(image=refs["multilayer"])
    rec("PullImage", c.call, "PullImage", pb.PullImageRequest(image=spec), 120)
    for _ in range(k):
        st = rec("ImageStatus", c.call, "ImageStatus", pb.ImageStatusRequest(image=spec))
        assert st.image.id, st
    rec("RemoveImage", c.call, "RemoveImage", pb.RemoveImageRequest(image=spec), 60)


# ---- the floor: runc and the CNI plugins by hand ----

class Floor:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "floor")
        self.root = os.path.join(self.dir, "runc")
        self.bundle = os.path.join(self.dir, "bundle")
        os.makedirs(self.root)
        self.conflist = net_conflist(self.dir, "floor", "10.89")
        self.netns = []      # ip netns names alive
        self.containers = []  # runc ids alive
        self.tag = "%04x" % random.randint(0, 0xffff)
        self.crisp_spec = None
        self.overlay_mounted = False
        self.rounds = 0
        self._bundle()

    def _bundle(self):
        rootfs = os.path.join(self.bundle, "rootfs")
        bindir = os.path.join(rootfs, "bin")
        os.makedirs(bindir)
        shutil.copy2("/bin/busybox", os.path.join(bindir, "busybox"))
        for applet in ("sh", "sleep", "true"):
            os.symlink("busybox", os.path.join(bindir, applet))
        for d in ("proc", "dev", "sys", "tmp"):
            os.mkdir(os.path.join(rootfs, d))
        run(RUNC, "spec", "--bundle", self.bundle)
        path = os.path.join(self.bundle, "config.json")
        with open(path) as f:
            spec = json.load(f)
        spec["process"]["terminal"] = False
        spec["process"]["args"] = COMMAND
        spec["root"]["readonly"] = True
        self.spec = spec

    def _join(self, name):
        """The bundle's container joins the pod's network namespace, as a pod's would."""
        spec = copy.deepcopy(self.spec)
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/run/netns/" + name
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(spec, f)

    def runc(self, *args):
        return run(RUNC, "--root", self.root, *args)

    def use_crisp_spec(self, spec):
        """From now on every other round runs a container of spec, crisp's own, its network
        namespace this floor's and its root an overlay of this floor's busybox (see round)."""
        self.crisp_bundle = os.path.join(self.dir, "crisp-bundle")
        self.crisp_root = os.path.join(self.crisp_bundle, "rootfs")
        os.makedirs(self.crisp_root)
        spec["root"]["path"] = self.crisp_root
        self.crisp_spec = spec

    def _mount_overlay(self):
        """A fresh overlay of the busybox root at crisp_root, as crisp gives each container
        (its upper and work directories new every round); not timed."""
        for d in ("upper", "work"):
            p = os.path.join(self.crisp_bundle, d)
            shutil.rmtree(p, ignore_errors=True)
            os.makedirs(p)
        run("mount", "-t", "overlay", "overlay", "-o",
            "lowerdir=%s,upperdir=%s/upper,workdir=%s/work"
            % (os.path.join(self.bundle, "rootfs"), self.crisp_bundle, self.crisp_bundle),
            self.crisp_root)
        self.overlay_mounted = True

    def _unmount_overlay(self):
        if self.overlay_mounted:
            subprocess.run(["umount", "-l", self.crisp_root], capture_output=True)
            self.overlay_mounted = False

    def _join_crisp_spec(self, name):
        self._mount_overlay()
        spec = copy.deepcopy(self.crisp_spec)
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = "/run/netns/" + name
        spec["linux"]["cgroupsPath"] = "/" + name
        with open(os.path.join(self.crisp_bundle, "config.json"), "w") as f:
            json.dump(spec, f)

    def create(self, name, bundle=None):
        # The container inherits runc's stdio: a pipe there would never see EOF.
        with open(os.path.join(self.dir, "runc-create.log"), "w+") as log:
            res = subprocess.run([RUNC, "--root", self.root, "create", "--bundle",
                                  bundle or self.bundle, name],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if res.returncode != 0:
                log.seek(0)
                raise RuntimeError("runc create %s failed (%d): %s"
                                   % (name, res.returncode, log.read().strip()))

    def _plugin(self, plugin, command, cid, netns, prev):
        conf = dict(plugin, name=self.conflist["name"], cniVersion=self.conflist["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
               "CNI_IFNAME": "eth0", "CNI_PATH": ":".join(PLUGIN_DIRS),
               "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=%s" % cid,
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        exe = next(os.path.join(d, plugin["type"]) for d in PLUGIN_DIRS
                   if os.path.exists(os.path.join(d, plugin["type"])))
        out = run(exe, stdin=json.dumps(conf), env=env)
        return json.loads(out) if command == "ADD" else None

    def cni(self, command, name, prev=None):
        path = "/run/netns/" + name
        plugins = self.conflist["plugins"]
        if command == "ADD":
            for plugin in plugins:
                prev = self._plugin(plugin, "ADD", name, path, prev)
            return prev
        for plugin in reversed(plugins):
            self._plugin(plugin, "DEL", name, path, prev)
        return None

    def round(self, name, k, times):
        # Every other round (once crisp's spec is known) runs crisp's spec instead of the
        # default one and counts only its create, under its own row: both creates then follow
        # the same steps (a CNI ADD just before), as a runtime's CreateContainer follows its
        # RunPodSandbox.
        with_crisp_spec = self.crisp_spec is not None and self.rounds % 2 == 1
        self.rounds += 1
        all_times, times = times, ({} if with_crisp_spec else times)
        rec = Rec(times)
        run("ip", "netns", "add", name)
        self.netns.append(name)
        if with_crisp_spec:
            self._join_crisp_spec(name)
        else:
            self._join(name)
        t0 = time.perf_counter()
        result = rec("RunPodSandbox", self.cni, "ADD", name)
        t1 = time.perf_counter()
        self.containers.append(name)
        if with_crisp_spec:
            Rec(all_times)(CRISP_SPEC_CREATE, self.create, name, self.crisp_bundle)
        else:
            rec("CreateContainer", self.create, name)
        rec("StartContainer", self.runc, "start", name)
        rec.add("Create+Start", (time.perf_counter() - t1) * 1000)
        for _ in range(k):
            rec("ExecSync", self.runc, "exec", name, "true")
        t2 = time.perf_counter()
        pid = json.loads(self.runc("state", name))["pid"]
        fd = os.pidfd_open(pid)
        try:
            self.runc("kill", name, "KILL")
            select.select([fd], [], [], 10)
        finally:
            os.close(fd)
        rec.add("StopContainer", (time.perf_counter() - t2) * 1000)
        rec("RemoveContainer", self.runc, "delete", name)
        self.containers.remove(name)
        self._unmount_overlay()
        rec.add("container lifecycle", times["Create+Start"][-1]
                + (time.perf_counter() - t2) * 1000)
        rec("StopPodSandbox", self.cni, "DEL", name, result)
        t3 = time.perf_counter()
        rec.add("pod lifecycle", (t1 - t0 + t3 - t2) * 1000 + times["Create+Start"][-1])
        run("ip", "netns", "del", name)
        self.netns.remove(name)

    def cleanup(self):
        problems = []
        for name in list(self.containers):
            subprocess.run([RUNC, "--root", self.root, "delete", "--force", name],
                           capture_output=True)
        self._unmount_overlay()
        for name in list(self.netns):
            try:
                self.cni("DEL", name)
            except (RuntimeError, StopIteration) as e:
                problems.append("floor CNI DEL of %s: %s" % (name, e))
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.conflist["plugins"][0]["bridge"]],
                       capture_output=True)
        return problems


# ---- processes, CPU and memory ----

def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("RssAnon", "VmRSS"):
                    out[key] = int(val.split()[0])  # kB
    except OSError:
        pass
    return out


def pids_matching(text):
    """Processes whose command line mentions TEXT (a runtime's own directory)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


class Runtime:
    """A CRI runtime under test: its client, daemon pid, and how to find its monitors."""

    def __init__(self, name, client, pid, mark, helper_exe):
        self.name, self.client, self.pid = name, client, pid
        self.mark, self.helper_exe = mark, helper_exe

    def helpers(self):
        pids = []
        for pid in pids_matching(self.mark):
            if pid == self.pid:
                continue
            try:
                if os.path.basename(os.readlink("/proc/%d/exe" % pid)) == self.helper_exe:
                    pids.append(pid)
            except OSError:
                pass
        return pids

    def memory(self):
        d = proc_status(self.pid)
        helpers = self.helpers()
        return {"anon_kb": d.get("RssAnon"), "rss_kb": d.get("VmRSS"),
                "helpers": len(helpers),
                "helpers_rss_kb": sum(proc_status(p).get("VmRSS", 0) for p in helpers)}


def exec_cpu(rt, refs, logdir, probes):
    c = rt.client
    pod_cfg, cfg = pod_configs("cpu-" + rt.name, logdir, refs["busybox"])
    pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg), 60).pod_sandbox_id
    try:
        cid = c.call("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
        c.call("StartContainer", pb.StartContainerRequest(container_id=cid), 60)
        req = pb.ExecSyncRequest(container_id=cid, cmd=["true"], timeout=10)
        c.call("ExecSync", req, 30)
        pids = [rt.pid] + rt.helpers()
        before = cpu_ticks(pids)
        t = time.perf_counter()
        for _ in range(probes):
            c.call("ExecSync", req, 30)
        wall = time.perf_counter() - t
        used = cpu_ticks(pids) - before
        c.call("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0), 60)
        c.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid), 60)
    finally:
        c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
        c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)
    hz = os.sysconf("SC_CLK_TCK")
    return {"cpu_ms_per_probe": round(used * 1000.0 / hz / probes, 2),
            "wall_ms_per_probe": round(wall * 1000 / probes, 2)}


def churn(rt, refs, logdir, n):
    """N pod + container lifecycles one after another."""
    c = rt.client
    for i in range(n):
        pod_cfg, cfg = pod_configs("churn-%s-%d" % (rt.name, i), logdir, refs["busybox"])
        pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg),
                     60).pod_sandbox_id
        try:
            cid = c.call("CreateContainer", pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
            c.call("StartContainer", pb.StartContainerRequest(container_id=cid), 60)
            c.call("ContainerStatus", pb.ContainerStatusRequest(container_id=cid))
            c.call("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=0), 60)
            c.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid), 60)
        finally:
            c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
            c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)


def memory_run(rt, refs, logdir, pods, lifecycles):
    c = rt.client
    out = {"after rounds": rt.memory()}
    if lifecycles:
        churn(rt, refs, logdir, lifecycles)
        time.sleep(2)
        out["+%d lifecycles" % lifecycles] = rt.memory()
    made = []
    try:
        for i in range(pods):
            pod_cfg, cfg = pod_configs("mem-%s-%d" % (rt.name, i), logdir, refs["busybox"])
            pod = c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg),
                         60).pod_sandbox_id
            made.append(pod)
            cid = c.call("CreateContainer", pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
            c.call("StartContainer", pb.StartContainerRequest(container_id=cid), 60)
        time.sleep(1)
        out["%d pods" % pods] = rt.memory()
    finally:
        for pod in made:
            c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
            c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)
    time.sleep(2)
    out["torn down"] = rt.memory()
    return out


# ---- the run ----

def crisp_spec(daemon, client, refs, logdir, dest):
    """The OCI spec crisp writes for the rounds' container, made to stand alone: a pod and a
    container are made once, the spec read, every file or directory of crisp's that it binds
    (pod files, /dev/shm, the termination log) copied under dest, the paths of the pod's
    namespaces other than the network dropped (runc makes new ones), then both removed."""
    pod_cfg, cfg = pod_configs("bench-spec", logdir, refs["busybox"])
    pod = client.call("RunPodSandbox", pb.RunPodSandboxRequest(config=pod_cfg), 60).pod_sandbox_id
    try:
        cid = client.call("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), 60).container_id
        with open(os.path.join(daemon.run_root, "containers", cid, "config.json")) as f:
            spec = json.load(f)
        os.makedirs(dest)
        for i, m in enumerate(spec.get("mounts", [])):
            src = m.get("source", "")
            if src.startswith(daemon.tmp + "/") and os.path.exists(src):
                copy = os.path.join(dest, "%d-%s" % (i, os.path.basename(src)))
                if os.path.isdir(src):
                    os.makedirs(copy)
                else:
                    shutil.copy2(src, copy)
                m["source"] = copy
        for ns in spec["linux"]["namespaces"]:
            if ns["type"] != "network":
                ns.pop("path", None)
        client.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid), 60)
    finally:
        client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), 60)
        client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), 60)
    return spec


def start_runtimes(tmp, reg, refs, builds, stack):
    runtimes = {}
    for name, builddir in builds:
        d = steps_mod.BuildDaemon(os.path.join(tmp, "crisp-" + name), builddir)
        stack.append(d)
        with open(os.path.join(d.registries_dir, "50-bench.conf"), "w") as f:
            f.write(registries_conf(reg.host))
        with open(os.path.join(d.cni_dir, "10-bench.conflist"), "w") as f:
            json.dump(net_conflist(d.tmp, "crisp", "10.88"), f)
        d.start()
        runtimes[name] = Runtime(name, d.client, d.proc.pid, d.tmp, "crisp-conmon")
    ctd = steps_mod.Containerd(tmp, reg.host, refs["pause"])
    stack.append(ctd)
    with open(os.path.join(ctd.dir, "cni", "10-bench.conflist"), "w") as f:
        json.dump(net_conflist(ctd.dir, "ctrd", "10.87"), f)
    ctd.start()
    runtimes["containerd"] = Runtime("containerd", ctd.client, ctd.proc.pid, ctd.sock,
                                     "containerd-shim-runc-v2")
    fresh = {}
    for rt in runtimes.values():
        rt.client.call("PullImage", pb.PullImageRequest(image=pb.ImageSpec(
            image=refs["busybox"])), 120)
        fresh[rt.name] = rt.memory()
    return runtimes, fresh


def netns_names():
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


def stop_all(stack, floor, netns_before):
    problems = []
    if floor is not None:
        problems += floor.cleanup()
    for r in reversed(stack):
        try:
            if isinstance(r, steps_mod.Containerd):
                problems += ["containerd left mount %s" % m for m in r.stop()]
            else:
                problems += [str(x) for x in r.cleanup()]
        except Exception as e:  # noqa: BLE001 (clean the others anyway)
            problems.append("stopping %s: %s" % (type(r).__name__, e))
    # containerd names its network namespaces cni-<uuid>; only ours can have made new ones.
    for name in netns_names() - netns_before:
        if name.startswith("cni-"):
            problems.append("netns %s was left; removed" % name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return problems


def summarize(xs):
    return {"median_ms": round(statistics.median(xs), 3), "p90_ms": round(p90(xs), 3)}


def bench(args):
    tmp = tempfile.mkdtemp(prefix="crisp-bench-all-")
    logdir = os.path.join(tmp, "logs")
    os.makedirs(logdir)
    builds = args.crisp or [("crisp", crisp_daemon.BUILDDIR)]
    netns_before = netns_names()
    netns_dir_before = os.path.exists("/run/netns")
    stack, floor, times, result = [], None, {}, {}
    try:
        with Registry() as reg:
            refs = steps_mod.push_images(reg, tmp)
            runtimes, fresh = start_runtimes(tmp, reg, refs, builds, stack)
            floor = Floor(tmp)
            first = next(d for d in stack if isinstance(d, steps_mod.BuildDaemon))
            floor.use_crisp_spec(crisp_spec(first, runtimes[builds[0][0]].client, refs, logdir,
                                            os.path.join(tmp, "floor", "crisp-binds")))
            names = list(runtimes) + ["floor"]
            for n in names:
                times[n] = {}
            for rnd in range(-args.warmup, args.n):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                for n in order:
                    t = times[n] if rnd >= 0 else {}
                    tag = "%s-%d" % (n, rnd + args.warmup)
                    if n == "floor":
                        floor.round("bench-floor-%s-%d" % (floor.tag, rnd + args.warmup),
                                    args.k, t)
                    else:
                        cri_round(runtimes[n].client, refs, logdir, "b" + tag, args.k, t)
            cpu = {n: exec_cpu(rt, refs, logdir, args.probes) for n, rt in runtimes.items()}
            mem = {}
            for n, rt in runtimes.items():
                mem[n] = {"fresh": fresh[n]}
                mem[n].update(memory_run(rt, refs, logdir, args.pods, args.lifecycles))
            result = {"n": args.n, "k": args.k, "probes": args.probes, "pods": args.pods,
                      "crisp": [b[0] for b in builds], "cpu": cpu, "memory": mem,
                      "steps": {n: {s: summarize(v) for s, v in t.items()}
                                for n, t in times.items()}}
    finally:
        problems = stop_all(stack, floor, netns_before)
        if not netns_dir_before and os.path.isdir("/run/netns") and not os.listdir("/run/netns"):
            # `ip netns add` made /run/netns a mount point of its own.
            subprocess.run(["umount", "/run/netns"], capture_output=True)
            os.rmdir("/run/netns")
        shutil.rmtree(tmp, ignore_errors=True)
    result["problems"] = problems
    return result


def fmt(s):
    return "%.2f / %.2f" % (s["median_ms"], s["p90_ms"]) if s else "-"


def print_table(r):
    crisps = r["crisp"]
    cols = crisps + ["containerd", "floor"]
    print("rounds %d (alternated), %d calls of each probe per round; median / p90 ms"
          % (r["n"], r["k"]))
    head = "%-20s" % "step" + "".join("%18s" % c for c in cols)
    for c in crisps:
        head += "%10s%10s" % ("/ctrd", "-floor") if len(crisps) == 1 else \
            "%10s%10s" % (c[:4] + "/ctrd", c[:4] + "-flr")
    print(head)
    for step in STEPS:
        row = "%-20s" % step
        for c in cols:
            row += "%18s" % fmt(r["steps"][c].get(step))
        ctrd = r["steps"]["containerd"].get(step)
        fl = r["steps"]["floor"].get(step)
        for c in crisps:
            me = r["steps"][c][step]["median_ms"]
            row += "%10s" % ("%.2f" % (me / ctrd["median_ms"]) if ctrd else "-")
            row += "%10s" % ("%+.1f" % (me - fl["median_ms"]) if fl else "-")
        print(row)
    print("\nExecSync `true`, %d probes: CPU ms per probe (daemon + monitors/shims + reaped "
          "children), wall ms" % r["probes"])
    for n, v in r["cpu"].items():
        print("  %-12s cpu %6.2f   wall %6.2f" % (n, v["cpu_ms_per_probe"], v["wall_ms_per_probe"]))
    print("\nmemory, kB: daemon RssAnon / VmRSS; monitors (crisp) or shims (containerd): "
          "count, total RSS")
    for n, phases in r["memory"].items():
        for ph, m in phases.items():
            print("  %-12s %-16s anon %7s  rss %7s   helpers %3d  rss %8d"
                  % (n, ph, m["anon_kb"], m["rss_kb"], m["helpers"], m["helpers_rss_kb"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10, help="rounds per runtime")
    ap.add_argument("-k", type=int, default=5, help="calls of each probe per round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--probes", type=int, default=50, help="ExecSync calls for the CPU figure")
    ap.add_argument("--pods", type=int, default=20, help="pods for the memory figure")
    ap.add_argument("--lifecycles", type=int, default=0,
                    help="pod + container lifecycles before the memory figure with pods")
    ap.add_argument("--crisp", type=steps_mod.build_arg, action="append",
                    help="NAME=BUILDDIR, one column per build (repeatable)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    if not os.path.exists(steps_mod.CONTAINERD):
        sys.exit("%s is not installed" % steps_mod.CONTAINERD)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    try:
        r = bench(args)
    except (KeyboardInterrupt, Interrupted) as e:
        print("interrupted (%s); everything made was removed" % (e or "Ctrl-C"), file=sys.stderr)
        return 130
    show = (lambda x: print(json.dumps(x, indent=2))) if args.json else print_table
    show(r)
    sys.stderr.writelines("problem: %s\n" % p for p in r["problems"])
    return int(bool(r["problems"]))


if __name__ == "__main__":
    sys.exit(main())
