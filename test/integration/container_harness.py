"""Helpers for crisp's container integration tests (test_container*.py).

Owns: the extra test images (entrypoint/cmd, env, working dir, user, stop signal), a daemon
that may pull from the test registry with busybox already pulled, host-network pods with a log
directory, CRI call wrappers for containers, reading CRI log files back, looking at the host
(monitor processes by their argv, cgroups of a container, processes by argv), and the
teardown that removes everything through CRI and runs the daemon's leak check (leakcheck).

Tests are written against the CRI behaviour kubelet and crictl expect (containerd and CRI-O
are the reference), never against crisp's internals; the one exception is the monitor's
argv, which is how "exactly one monitor per container" is counted.
"""
import json
import os
import re
import subprocess
import time

import grpc
import pytest

from cri_client import pb
from image_harness import build_and_push, pull, start_crisp
import leakcheck
from leakcheck import read_cmdline
from registry_harness import import_builder

MiB = 1024 * 1024

# An endless loop that exits 0 on SIGTERM (busybox sh runs `sleep` as a child, so the trap
# fires within a second).
GRACEFUL = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
# PID 1 in a PID namespace ignores signals it has no handler for: SIGTERM does nothing.
STUBBORN = ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
SLEEPER = ["sleep", "3600"]

LOG_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
                    r"(stdout|stderr) ([FP]) (.*)$", re.S)

# Images beyond the stock busybox: (name, image config). All share the busybox layer.
EXTRA_IMAGES = {
    "entry": {"Entrypoint": ["echo", "E1", "E2"], "Cmd": ["C1", "C2"],
              "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=image", "ONLY_IMAGE=yes"],
              "WorkingDir": "/home/web"},
    "userweb": {"Cmd": ["sh"], "User": "web"},
    "usernum": {"Cmd": ["sh"], "User": "1002:1003"},
    "stopsig": {"Cmd": ["sh"], "StopSignal": "SIGUSR1"},
    "nocmd": {},
}


_pushed = {}


def push_extra_images(reg):
    """Pushes EXTRA_IMAGES to REG as ctest/<name>:latest (once per registry); returns
    {name: reference, name + "@": manifest digest}."""
    if reg.host in _pushed:
        return _pushed[reg.host]
    build = import_builder()
    layer = build.busybox_layer()
    refs = {}
    for name, config in EXTRA_IMAGES.items():
        cfg = dict(config)
        res = build_and_push(reg, "ctest/" + name, [layer], config=cfg)
        refs[name] = "%s/ctest/%s:latest" % (reg.host, name)
        refs[name + "@"] = res["pushed"]
    _pushed[reg.host] = refs
    return refs


# ---- the host side ----

def processes():
    """{pid: argv} of every process readable now."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            argv = read_cmdline(entry)
            if argv:
                found[int(entry)] = argv
    return found


def monitors(needle):
    """Pids of crisp-conmon processes whose argv contains NEEDLE (a container id or a
    daemon's directory)."""
    return sorted(leakcheck.monitors(needle))


def pids_with_argv(argv):
    return sorted(pid for pid, a in processes().items() if a == list(argv))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cgroups_of(pid):
    """{controller(s): absolute path under /sys/fs/cgroup} for PID, or {} if it is gone."""
    paths = {}
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            lines = f.read().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        if ctrls == "":
            mount = "/sys/fs/cgroup/unified"
            if not os.path.isdir(mount):
                mount = "/sys/fs/cgroup"
            paths["unified"] = mount + path
        else:
            name = ctrls.replace("name=", "")
            base = "/sys/fs/cgroup/" + name
            if not os.path.isdir(base):
                base = "/sys/fs/cgroup/" + ctrls.split(",")[0]
            paths[name] = base + path
    return paths


def remove_cgroup(name, attempts=100):
    """Removes the cgroup at NAME (a path below each hierarchy, e.g. "/crisp-test-1") from
    every hierarchy (and the v2 root), waiting for it to empty; returns the directories
    still there."""
    root = "/sys/fs/cgroup"
    dirs = [os.path.join(root, name.strip("/"))]
    dirs += [os.path.join(root, h, name.strip("/")) for h in os.listdir(root)
             if not os.path.islink(os.path.join(root, h))]
    for d in dirs:
        for _ in range(attempts):
            if not os.path.isdir(d):
                break
            try:
                os.rmdir(d)
            except OSError:
                time.sleep(0.05)
    return [d for d in dirs if os.path.isdir(d)]


def memory_cgroup(pid):
    return cgroups_of(pid).get("memory")


def read_int(path):
    with open(path) as f:
        return int(f.read().split()[0])


def proc_status(text):
    """The fields of a /proc/PID/status text: {key: value string}."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def runc_status(env, cid):
    """runc's own word on the container ("created", "running", ...), from crisp's runc root."""
    out = subprocess.run(["/usr/sbin/runc", "--root",
                          os.path.join(env.d.run_root, "runtime", "runc"), "state", cid],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["status"]


def wait_for(fn, timeout=10, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- CRI log files ----

def parse_log(path):
    """[(timestamp, stream, tag, text)] of a CRI log file; raises on a malformed record."""
    records = []
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "log does not end with a newline: %r" % data[-80:]
    for raw in data.split(b"\n")[:-1]:
        m = LOG_RE.match(raw.decode(errors="replace"))
        assert m, "malformed CRI log record: %r" % raw
        records.append(m.groups())
    return records


def log_lines(path, stream=None):
    """Whole lines of the log (P records joined to the next F), optionally of one stream."""
    lines, partial = [], {}
    for _, s, tag, text in parse_log(path):
        if stream and s != stream:
            continue
        partial[s] = partial.get(s, "") + text
        if tag == "F":
            lines.append(partial.pop(s))
    lines += [v for v in partial.values()]
    return lines


def ts_ns(stamp):
    """Nanoseconds since the epoch of an RFC 3339 UTC time stamp with up to 9 digits."""
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$", stamp)
    assert m, "not an RFC 3339 UTC stamp: %s" % stamp
    import calendar
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    frac = (m.group(7) or "").ljust(9, "0")
    return secs * 10**9 + int(frac)


# ---- CRI wrappers ----

def rpc_error(fn, *args, **kw):
    """Calls FN expecting a gRPC error; returns it."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("%s succeeded; an error was expected" % getattr(fn, "__name__", fn))


class ContainerEnv:
    """A daemon with busybox pulled, a log directory, and helpers for pods and containers."""

    def __init__(self, daemon, registry, images, logdir):
        self.d = daemon
        self.registry = registry
        self.images = images
        self.busybox = "%s/busybox:latest" % registry.host
        self.logdir = logdir
        self.pods = {}
        pull(daemon, self.busybox)

    @property
    def c(self):
        return self.d.client

    def image(self, name):
        ref = self.images[name]
        pull(self.d, ref)
        return ref

    # pods

    def pod_config(self, name, **kw):
        ns = pb.NamespaceOption(network=pb.NODE, pid=kw.pop("pid", pb.CONTAINER),
                                ipc=kw.pop("ipc", pb.POD))
        privileged = kw.pop("privileged", False)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="ctest"),
            log_directory=os.path.join(self.logdir, name),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=kw.pop("cgroup_parent", ""),
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns,
                                                                privileged=privileged)),
            **kw)

    def run_pod(self, name="pod", **kw):
        cfg = self.pod_config(name, **kw)
        os.makedirs(cfg.log_directory, exist_ok=True)
        pod_id = self.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg),
                             timeout=60).pod_sandbox_id
        self.pods[pod_id] = cfg
        return pod_id

    # containers

    def config(self, name, command=None, args=None, image=None, envs=None, mounts=None,
               labels=None, annotations=None, log_path=None, working_dir="", resources=None,
               security=None, attempt=0, stop_signal=0):
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=image or self.busybox),
            command=command or [], args=args or [], working_dir=working_dir,
            envs=[pb.KeyValue(key=k, value=v.encode()) for k, v in (envs or {}).items()],
            mounts=mounts or [], labels=labels or {}, annotations=annotations or {},
            log_path=log_path if log_path is not None else "%s_%d.log" % (name, attempt),
            stop_signal=stop_signal)
        if resources is not None:
            cfg.linux.resources.CopyFrom(resources)
        if security is not None:
            cfg.linux.security_context.CopyFrom(security)
        return cfg

    def create(self, pod_id, name="c", **kw):
        cfg = kw.pop("config", None) or self.config(name, **kw)
        pod_cfg = self.pods.get(pod_id)
        if pod_cfg is not None and not cfg.linux.security_context.HasField("namespace_options"):
            # kubelet gives every container the namespace modes of its pod.
            cfg.linux.security_context.namespace_options.CopyFrom(
                pod_cfg.linux.security_context.namespace_options)
        req = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg,
                                        sandbox_config=self.pods.get(pod_id))
        return self.c.call("CreateContainer", req, timeout=60).container_id

    def start(self, cid):
        self.c.call("StartContainer", pb.StartContainerRequest(container_id=cid), timeout=60)

    def run(self, pod_id, name="c", **kw):
        cid = self.create(pod_id, name, **kw)
        self.start(cid)
        return cid

    def stop(self, cid, timeout=10, rpc_timeout=None):
        self.c.call("StopContainer", pb.StopContainerRequest(container_id=cid, timeout=timeout),
                    timeout=rpc_timeout or timeout + 30)

    def remove(self, cid):
        self.c.call("RemoveContainer", pb.RemoveContainerRequest(container_id=cid), timeout=60)

    def status(self, cid, verbose=False):
        return self.c.call("ContainerStatus",
                           pb.ContainerStatusRequest(container_id=cid, verbose=verbose))

    def state(self, cid):
        return self.status(cid).status.state

    def info(self, cid):
        """The verbose info JSON as a dict (None when missing or not JSON)."""
        resp = self.status(cid, verbose=True)
        try:
            return json.loads(resp.info["info"])
        except (KeyError, ValueError):
            return None

    def pid(self, cid):
        info = self.info(cid)
        assert info and int(info.get("pid", 0)) > 0, "no pid in verbose info: %s" % info
        return int(info["pid"])

    def wait_exit(self, cid, timeout=20):
        wait_for(lambda: self.state(cid) == pb.CONTAINER_EXITED, timeout,
                 what="container %s to exit" % cid[:12])
        return self.status(cid).status

    def list(self, **filt):
        f = pb.ContainerFilter(**{k: v for k, v in filt.items() if k != "state"})
        if "state" in filt:
            f.state.state = filt["state"]
        return self.c.call("ListContainers", pb.ListContainersRequest(filter=f)).containers

    def exec_sync(self, cid, cmd, timeout=10, rpc_timeout=None):
        return self.c.call("ExecSync", pb.ExecSyncRequest(container_id=cid, cmd=cmd,
                                                          timeout=timeout),
                           timeout=rpc_timeout or timeout + 30)

    def log_path(self, cid):
        return self.status(cid).status.log_path

    def output(self, pod_id, command, name="out", timeout=20, **kw):
        """Runs COMMAND to completion in a new container; returns (status, stdout lines)."""
        cid = self.run(pod_id, name, command=command, **kw)
        st = self.wait_exit(cid, timeout)
        return st, log_lines(st.log_path, "stdout")


def make_env(crisp_factory, registry, images, logdir, config="", **kw):
    """A ContainerEnv on a daemon from crisp_factory (KW: its class and arguments)."""
    d = start_crisp(crisp_factory, registry.host, config=config, **kw)
    return ContainerEnv(d, registry, images, logdir)


def finish_env(env):
    """Teardown: remove everything through CRI and stop the daemon, then its leak check (what
    leaked is removed); returns the leaks."""
    if env.d.proc is None:
        env.d.start()
    return env.d.check_leaks()


# ---- fixtures (imported by the test modules) ----

@pytest.fixture
def cenv(crisp_factory, registry, tmp_path):
    """A ContainerEnv on a fresh daemon; afterwards nothing may be left behind."""
    images = push_extra_images(registry)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, images, logdir)
    yield env
    leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks
