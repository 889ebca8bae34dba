"""crisp killed (SIGKILL) at a chosen instant inside an RPC, then started again: the state it
reports afterwards is the truth, and the call retried as a kubelet would gets the answer the
first call would have had.  The instant is chosen with a runtime handler whose binary is a
wrapper around runc that pauses before or after a verb while a control file says so."""
import json
import os
import signal
import subprocess
import time

import grpc
import pytest

from container_harness import (SLEEPER, alive, finish_env, make_env, monitors,  # noqa: F401
                               push_extra_images, wait_for)
from cri_client import pb

RUNC = "/usr/sbin/runc"

WRAPPER = """#!/bin/sh
# Pauses around the runtime verb named in a control file, first writing a marker (before the
# verb: the marker holds the arguments, one a line).
ctl=%(ctl)s
verb=
for a in "$@"; do
  case "$a" in create|start|state|delete|kill|exec) verb=$a; break ;; esac
done
if [ -n "$verb" ] && [ -e "$ctl/before-$verb" ]; then
  printf '%%s\n' "$@" >"$ctl/at-before-$verb"; sleep "$(cat "$ctl/before-$verb")"
fi
%(runc)s "$@"
rc=$?
if [ -n "$verb" ] && [ $rc = 0 ] && [ -e "$ctl/after-$verb" ]; then
  touch "$ctl/at-after-$verb"; sleep "$(cat "$ctl/after-$verb")"
fi
exit $rc
"""


class Paused:
    """A daemon whose 'paused' runtime handler is the wrapper."""

    def __init__(self, env, ctl):
        self.env = env
        self.ctl = ctl

    def arm(self, where, seconds=30):
        (self.ctl / where).write_text(str(seconds))

    def disarm(self):
        for f in self.ctl.iterdir():
            f.unlink()

    def wait_at(self, where, timeout=30):
        wait_for((self.ctl / ("at-" + where)).exists, timeout, what="the runtime at " + where)

    def run_pod(self, name="pod"):
        cfg = self.env.pod_config(name)
        os.makedirs(cfg.log_directory, exist_ok=True)
        pod = self.env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(
            config=cfg, runtime_handler="paused"), timeout=60).pod_sandbox_id
        self.env.pods[pod] = cfg
        return pod

    def kill_during(self, where, rpc, request):
        """Arms `where`, sends the call, SIGKILLs crisp once the runtime is there, restarts."""
        self.arm(where)
        fut = self.env.c.future(rpc, request, timeout=120)
        self.wait_at(where)
        self.env.d.kill9()
        assert isinstance(fut.exception(), grpc.RpcError)  # the call died with crisp
        self.disarm()
        self.env.d.start()


@pytest.fixture
def paused(crisp_factory, registry, tmp_path):
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    wrapper = tmp_path / "paused-runc"
    wrapper.write_text(WRAPPER % {"ctl": ctl, "runc": RUNC})
    wrapper.chmod(0o755)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir,
                   config="[runtime.paused]\npath = %s\nroot = %s\n"
                          % (wrapper, tmp_path / "paused-root"))
    p = Paused(env, ctl)
    yield p
    p.disarm()
    leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks


def create_request(env, pod):
    """A CreateContainerRequest for a sleeper in pod, as the kubelet sends it."""
    cfg = env.config("c", command=SLEEPER)
    cfg.linux.security_context.namespace_options.CopyFrom(
        env.pods[pod].linux.security_context.namespace_options)
    return pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg,
                                     sandbox_config=env.pods[pod])


def start_request(cid):
    return pb.StartContainerRequest(container_id=cid)


def test_kill_after_runtime_start_keeps_the_container_running(paused):
    env = paused.env
    pod = paused.run_pod()
    cid = env.create(pod, "s", command=SLEEPER)
    before = time.time_ns()
    paused.kill_during("after-start", "StartContainer", start_request(cid))
    st = env.status(cid).status
    assert st.state == pb.CONTAINER_RUNNING
    assert before <= st.started_at <= time.time_ns()
    pid = env.pid(cid)
    assert alive(pid)
    # The kubelet's retry gets what the first call would have answered.
    env.start(cid)
    assert env.state(cid) == pb.CONTAINER_RUNNING and env.pid(cid) == pid
    r = env.exec_sync(cid, ["sh", "-c", "echo up"])
    assert (r.exit_code, r.stdout) == (0, b"up\n")
    # And it is believed across another restart.
    env.d.kill9()
    env.d.start()
    assert env.status(cid).status.started_at == st.started_at
    env.stop(cid, timeout=0)
    assert env.status(cid).status.exit_code == 137
    env.remove(cid)


def test_kill_before_runtime_start_leaves_it_created(paused):
    env = paused.env
    pod = paused.run_pod()
    cid = env.create(pod, "s", command=SLEEPER)
    paused.kill_during("before-start", "StartContainer", start_request(cid))
    st = env.status(cid).status
    assert (st.state, st.started_at) == (pb.CONTAINER_CREATED, 0)
    env.start(cid)
    assert env.state(cid) == pb.CONTAINER_RUNNING
    r = env.exec_sync(cid, ["true"])
    assert r.exit_code == 0
    env.remove(cid)


def test_kill_after_start_of_a_short_lived_container_keeps_its_exit(paused):
    env = paused.env
    pod = paused.run_pod()
    cid = env.create(pod, "quick", command=["sh", "-c", "exit 3"])
    paused.kill_during("after-start", "StartContainer", start_request(cid))
    st = env.wait_exit(cid, 10)
    st = env.status(cid).status
    assert (st.exit_code, st.reason) == (3, "Error")
    assert 0 < st.started_at <= st.finished_at
    # A retried start of what has already run and exited is refused, not INTERNAL.
    err = None
    try:
        env.start(cid)
    except grpc.RpcError as e:
        err = e
    assert err is not None and err.code() == grpc.StatusCode.FAILED_PRECONDITION
    env.remove(cid)


def test_kill_after_runtime_create_then_retried_create(paused):
    """Killed after 'runtime create' succeeded but before CreateContainer answered: the
    half-made container is gone at restart and the kubelet's retry makes a working one."""
    env = paused.env
    pod = paused.run_pod()
    req = create_request(env, pod)
    paused.kill_during("after-create", "CreateContainer", req)
    assert [c.state for c in env.list()] in ([], [pb.CONTAINER_CREATED])
    cid = env.c.call("CreateContainer", req, timeout=60).container_id
    env.start(cid)
    assert env.state(cid) == pb.CONTAINER_RUNNING
    assert [c.id for c in env.list()] == [cid]
    assert len(monitors(cid)) == 1
    env.remove(cid)


CGROUP_ROOT = "/sys/fs/cgroup"


def hierarchies():
    """Each mounted cgroup hierarchy's root (v1 controllers, named ones, unified; or v2)."""
    if os.path.exists(os.path.join(CGROUP_ROOT, "cgroup.procs")):
        return [CGROUP_ROOT]
    return [p for p in (os.path.join(CGROUP_ROOT, n) for n in sorted(os.listdir(CGROUP_ROOT)))
            if not os.path.islink(p) and os.path.exists(os.path.join(p, "cgroup.procs"))]


def test_kill_inside_runtime_create_after_its_cgroup_is_made(paused):
    """Killed while the runtime is inside 'create', after it made the container's cgroup and
    put the container's first process there but before it recorded the container: the
    runtime's delete knows nothing of it, so the restart itself removes that cgroup (killing
    what is inside) with the rest of the half-made container."""
    env = paused.env
    pod = paused.run_pod()
    req = create_request(env, pod)
    paused.arm("before-create")
    fut = env.c.future("CreateContainer", req, timeout=120)
    paused.wait_at("before-create")
    args = (paused.ctl / "at-before-create").read_text().split("\n")
    bundle = args[args.index("--bundle") + 1]
    with open(os.path.join(bundle, "config.json")) as f:
        cg = json.load(f)["linux"]["cgroupsPath"]
    assert "crisp-" in os.path.basename(cg)
    # What runc has done at that point: the cgroup in every hierarchy, a process inside.
    made = [os.path.join(h, cg.strip("/")) for h in hierarchies()]
    for d in made:
        os.makedirs(d, exist_ok=True)
    inside = subprocess.Popen(["sleep", "300"])
    try:
        with open(os.path.join(made[0], "cgroup.procs"), "w") as f:
            f.write(str(inside.pid))
        env.d.kill9()
        assert isinstance(fut.exception(), grpc.RpcError)
        paused.disarm()
        env.d.start()
        assert inside.wait(timeout=10) == -signal.SIGKILL
        assert [d for d in made if os.path.exists(d)] == []
        assert list(env.list()) == []
        # The kubelet's retry makes a working container.
        cid = env.c.call("CreateContainer", req, timeout=60).container_id
        env.start(cid)
        assert env.state(cid) == pb.CONTAINER_RUNNING
        env.remove(cid)
    finally:
        if inside.poll() is None:
            inside.kill()
            inside.wait()
        for d in made:
            try:
                os.rmdir(d)
            except OSError:
                pass
