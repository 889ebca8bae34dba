"""Containers through CRI the way kubelet and crictl use them: create/start/stop/remove and
their errors, command and args against the image's entrypoint and cmd, environment, working
dir, exit codes and reasons, stop signals and timeouts, OOM, the CRI log format, log reopening,
ExecSync, ContainerStatus, ListContainers filters, UpdateContainerResources, and how pods and
images interact with their containers.  After every test no monitor, mount or cgroup is left
(the cenv fixture checks)."""
import os
import subprocess
import time

import grpc
import pytest

from container_harness import (GRACEFUL, MiB, SLEEPER, STUBBORN, alive, cenv,  # noqa: F401
                               log_lines, memory_cgroup, monitors, parse_log, pids_with_argv,
                               read_int, remove_cgroup, rpc_error, runc_status, ts_ns,
                               wait_for)
from cri_client import pb

NS = 10**9


# ---- lifecycle and errors ----

def test_create_start_stop_remove(cenv):
    pod = cenv.run_pod()
    cid = cenv.create(pod, "life", command=SLEEPER)
    assert len(cid) == 64 and all(ch in "0123456789abcdef" for ch in cid)
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_CREATED
    assert st.id == cid and st.metadata.name == "life"
    assert st.created_at > 0 and st.started_at == 0 and st.finished_at == 0
    cenv.start(cid)
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_RUNNING and st.started_at >= st.created_at
    assert len(monitors(cid)) == 1
    cenv.stop(cid, timeout=0)
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED
    assert st.finished_at >= st.started_at
    assert st.exit_code == 137
    cenv.remove(cid)
    err = rpc_error(cenv.status, cid)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not cenv.list()


def test_create_in_a_missing_pod_is_not_found(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("x", command=SLEEPER)
    err = rpc_error(cenv.c.call, "CreateContainer",
                    pb.CreateContainerRequest(pod_sandbox_id="0" * 64, config=cfg,
                                              sandbox_config=cenv.pods[pod]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not cenv.list()


def test_create_with_an_image_not_pulled_is_not_found(cenv):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "x", image=cenv.registry.host + "/not/pulled:latest")
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not cenv.list()


def test_create_with_an_empty_name_is_invalid(cenv):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "", command=SLEEPER)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not cenv.list()


def test_create_without_metadata_is_invalid(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("x", command=SLEEPER)
    cfg.ClearField("metadata")
    err = rpc_error(cenv.create, pod, config=cfg)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_create_without_any_command_fails(cenv):
    pod = cenv.run_pod()
    image = cenv.image("nocmd")
    rpc_error(cenv.create, pod, "nocmd", image=image)
    assert not cenv.list()


def test_create_retried_with_the_same_metadata_returns_the_same_id(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("retry", command=SLEEPER)
    first = cenv.create(pod, config=cfg)
    again = cenv.create(pod, config=cfg)
    assert again == first
    assert [c.id for c in cenv.list()] == [first]
    other = cenv.create(pod, config=cenv.config("retry", command=SLEEPER, attempt=1))
    assert other != first


def test_create_in_a_stopped_pod_fails(cenv):
    pod = cenv.run_pod()
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    rpc_error(cenv.create, pod, "late", command=SLEEPER)
    assert not cenv.list()


def test_start_twice_is_an_error(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "twice", command=SLEEPER)
    rpc_error(cenv.start, cid)
    assert cenv.state(cid) == pb.CONTAINER_RUNNING
    assert len(monitors(cid)) == 1


def test_start_of_an_exited_container_is_an_error(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "done", command=["true"])
    cenv.wait_exit(cid)
    rpc_error(cenv.start, cid)
    assert cenv.state(cid) == pb.CONTAINER_EXITED


def test_start_leaves_runc_seeing_it_running(cenv):
    """crisp releases a runc container's init through runc's exec fifo, as `runc start` does:
    runc itself must then see the container running (its fifo removed)."""
    pod = cenv.run_pod()
    cid = cenv.create(pod, "seen", command=SLEEPER)
    fifo = os.path.join(cenv.d.run_root, "runtime", "runc", cid, "exec.fifo")
    assert runc_status(cenv, cid) == "created" and os.path.exists(fifo)
    cenv.start(cid)
    assert runc_status(cenv, cid) == "running" and not os.path.exists(fifo)
    assert cenv.exec_sync(cid, ["echo", "in"]).stdout == b"in\n"


def test_a_started_process_shows_its_own_command_line_at_once(cenv):
    """The fifo's end comes with the init's exec, a moment before the new program's arguments
    are in place; StartContainer answers after that moment, so /proc shows the command."""
    pod = cenv.run_pod()
    for i in range(30):
        cid = cenv.create(pod, "argv%d" % i, command=SLEEPER)
        cenv.start(cid)
        assert read_argv(cenv.pid(cid)) == SLEEPER, "start %d" % i
        cenv.stop(cid, 0)
        cenv.remove(cid)


def test_start_after_the_init_was_killed_fails_without_waiting(cenv):
    pod = cenv.run_pod()
    cid = cenv.create(pod, "gone", command=SLEEPER)
    os.kill(cenv.pid(cid), 9)
    t0 = time.monotonic()
    err = rpc_error(cenv.start, cid)
    assert time.monotonic() - t0 < 5, "the start waited for an init that was killed"
    assert err.details()
    wait_for(lambda: cenv.state(cid) == pb.CONTAINER_EXITED, 10, what="the exit")


def test_unknown_ids_are_not_found(cenv):
    missing = "f" * 64
    for fn in (cenv.start, cenv.status):
        assert rpc_error(fn, missing).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(cenv.stop, missing).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(cenv.exec_sync, missing, ["true"]).code() == grpc.StatusCode.NOT_FOUND


def test_stop_of_a_stopped_container_is_ok(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "s", command=SLEEPER)
    cenv.stop(cid, timeout=0)
    finished = cenv.status(cid).status.finished_at
    cenv.stop(cid, timeout=0)
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED and st.finished_at == finished


def test_stop_of_a_created_container_is_ok(cenv):
    pod = cenv.run_pod()
    cid = cenv.create(pod, "never", command=SLEEPER)
    cenv.stop(cid, timeout=0)
    assert cenv.state(cid) in (pb.CONTAINER_CREATED, pb.CONTAINER_EXITED)
    cenv.remove(cid)


def test_remove_is_idempotent_and_forces_a_running_container(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "r", command=SLEEPER)
    pid = cenv.pid(cid)
    cenv.remove(cid)
    assert not alive(pid)
    cenv.remove(cid)
    cenv.remove("e" * 64)
    assert not cenv.list()


def test_remove_of_a_created_container(cenv):
    pod = cenv.run_pod()
    cid = cenv.create(pod, "c", command=SLEEPER)
    cenv.remove(cid)
    assert not cenv.list()


# ---- command, args, env, working dir ----

@pytest.mark.parametrize("command,args,expected", [
    ([], [], "E1 E2 C1 C2"),
    ([], ["a1", "a2"], "E1 E2 a1 a2"),
    (["echo", "c1"], [], "c1"),
    (["echo", "c1"], ["a1"], "c1 a1"),
])
def test_command_and_args_against_entrypoint_and_cmd(cenv, command, args, expected):
    pod = cenv.run_pod()
    image = cenv.image("entry")
    cid = cenv.run(pod, "cmd", image=image, command=command, args=args)
    st = cenv.wait_exit(cid)
    assert st.exit_code == 0
    assert log_lines(st.log_path, "stdout") == [expected]


def test_env_request_overrides_image(cenv):
    pod = cenv.run_pod()
    image = cenv.image("entry")
    st, out = cenv.output(pod, ["env"], image=image,
                          envs={"FOO": "request", "NEW": "x y=z", "EMPTY": ""})
    env = dict(line.split("=", 1) for line in out)
    assert env["FOO"] == "request"
    assert env["ONLY_IMAGE"] == "yes"
    assert env["NEW"] == "x y=z"
    assert env["EMPTY"] == ""
    assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert sum(1 for line in out if line.startswith("FOO=")) == 1


@pytest.mark.parametrize("key,value", [("BAD", "a\nb"), ("BAD", "a\rb"), ("A\nB", "v"),
                                       ("A=B", "v"), ("BAD", "a\0b")])
def test_env_with_control_characters_is_invalid(cenv, key, value):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "envbad", command=["env"], envs={key: value})
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert not cenv.list()


def test_working_dir_from_request_and_image(cenv):
    pod = cenv.run_pod()
    _, out = cenv.output(pod, ["pwd"], name="wd1", working_dir="/tmp")
    assert out == ["/tmp"]
    _, out = cenv.output(pod, ["pwd"], name="wd2", image=cenv.image("entry"))
    assert out == ["/home/web"]
    _, out = cenv.output(pod, ["pwd"], name="wd3")
    assert out == ["/"]


# ---- exit codes, stop signal and timeout, OOM ----

def test_exit_zero_is_completed(cenv):
    pod = cenv.run_pod()
    st, _ = cenv.output(pod, ["true"])
    assert st.exit_code == 0 and st.reason == "Completed"
    assert st.created_at <= st.started_at <= st.finished_at
    assert st.finished_at - st.started_at < 10 * NS


def test_exit_three_is_error(cenv):
    pod = cenv.run_pod()
    st, _ = cenv.output(pod, ["sh", "-c", "exit 3"])
    assert st.state == pb.CONTAINER_EXITED
    assert st.exit_code == 3 and st.reason == "Error"


def test_graceful_stop_uses_sigterm(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "g", command=GRACEFUL)
    time.sleep(0.3)
    t0 = time.monotonic()
    cenv.stop(cid, timeout=10)
    elapsed = time.monotonic() - t0
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED
    assert st.exit_code == 0 and st.reason == "Completed"
    assert elapsed < 5, "SIGTERM trap should end it within ~1 s, took %.1f s" % elapsed


def test_stop_kills_after_the_timeout(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "k", command=STUBBORN)
    time.sleep(0.3)
    t0 = time.monotonic()
    cenv.stop(cid, timeout=2)
    elapsed = time.monotonic() - t0
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
    assert 1.8 <= elapsed < 6, "stop took %.2f s with timeout 2" % elapsed


def test_stop_with_timeout_zero_kills_at_once(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "k0", command=STUBBORN)
    t0 = time.monotonic()
    cenv.stop(cid, timeout=0)
    elapsed = time.monotonic() - t0
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137
    assert elapsed < 1.5, "timeout 0 took %.2f s" % elapsed


def test_stop_after_its_monitor_was_killed_records_an_unknown_exit(cenv):
    """Nobody is left to write the exit file: the stop ends when it sees the monitor gone,
    and records that the exit status is unknown; the remove still cleans up everything."""
    pod = cenv.run_pod()
    cid = cenv.run(pod, "orphan", command=SLEEPER)
    [mon] = monitors(cid)
    os.kill(mon, 9)
    wait_for(lambda: not alive(mon), 10, what="the monitor's end")
    t0 = time.monotonic()
    cenv.stop(cid, timeout=0)
    elapsed = time.monotonic() - t0
    st = cenv.status(cid).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 255
    assert st.reason == "Unknown" and "monitor" in st.message
    assert elapsed < 5, "the stop waited %.2f s for a monitor that was gone" % elapsed
    cenv.remove(cid)


def trap_script(sig):
    """A command that exits 0 on sig (a name or number sh's trap knows) and ignores TERM."""
    return ["sh", "-c", "trap 'echo got-%s; exit 0' %s; trap '' TERM; "
            "echo ready; while :; do sleep 1; done" % (sig, sig)]


def wait_ready(cid, cenv):
    wait_for(lambda: "ready" in log_lines(cenv.log_path(cid)), 10, what="ready")


def assert_stopped_by(cenv, cid, sig, what):
    """StopContainer sends sig, not TERM, and the container exits on it at once."""
    wait_ready(cid, cenv)
    t0 = time.monotonic()
    cenv.stop(cid, timeout=8)
    assert time.monotonic() - t0 < 5, "%s was not sent" % what
    st = cenv.status(cid).status
    assert st.exit_code == 0 and "got-%s" % sig in log_lines(st.log_path)


def test_stop_signal_from_the_image(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "sig", image=cenv.image("stopsig"), command=trap_script("USR1"))
    assert_stopped_by(cenv, cid, "USR1", "the image's StopSignal SIGUSR1")


def test_stop_signal_from_the_request(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "sig", command=trap_script("USR1"), stop_signal=pb.SIGNAL_SIGUSR1)
    assert_stopped_by(cenv, cid, "USR1", "the requested stop signal SIGUSR1")


def test_stop_signal_realtime_from_the_request(cenv):
    # The CRI's SIGRTMIN+1 is 35, as Docker and containerd number it.
    pod = cenv.run_pod()
    cid = cenv.run(pod, "rt", command=trap_script("35"), stop_signal=pb.SIGNAL_SIGRTMINPLUS1)
    assert_stopped_by(cenv, cid, "35", "the requested stop signal SIGRTMIN+1")


def test_oom_is_reported(cenv):
    pod = cenv.run_pod()
    res = pb.LinuxContainerResources(memory_limit_in_bytes=16 * MiB)
    cid = cenv.run(pod, "oom", command=["tail", "/dev/zero"], resources=res)
    st = cenv.wait_exit(cid, timeout=30)
    assert st.reason == "OOMKilled", "reason %r exit %d" % (st.reason, st.exit_code)
    assert st.exit_code == 137


# ---- logs ----

def test_log_format_line_by_line(cenv):
    pod = cenv.run_pod()
    script = "echo one; echo two >&2; echo; printf 'no-newline'"
    before = time.time_ns()
    cid = cenv.run(pod, "logs", command=["sh", "-c", script])
    st = cenv.wait_exit(cid)
    after = time.time_ns()
    assert st.log_path == os.path.join(cenv.pods[pod].log_directory, "logs_0.log")
    records = parse_log(st.log_path)
    stamps = [ts_ns(r[0]) for r in records]
    assert stamps == sorted(stamps)
    assert all(before - NS <= s <= after + NS for s in stamps)
    full = [(s, t, x) for _, s, t, x in records]
    assert ("stdout", "F", "one") in full
    assert ("stderr", "F", "two") in full
    assert ("stdout", "F", "") in full
    assert log_lines(st.log_path, "stdout") == ["one", "", "no-newline"]
    assert log_lines(st.log_path, "stderr") == ["two"]
    last = [r for r in records if r[1] == "stdout"][-1]
    assert last[3] == "no-newline"


def test_partial_lines_are_joined(cenv):
    pod = cenv.run_pod()
    script = "printf 'abc'; sleep 1; printf 'def\\n'; echo tail"
    st, out = cenv.output(pod, ["sh", "-c", script])
    assert out == ["abcdef", "tail"]
    tags = [(r[2], r[3]) for r in parse_log(st.log_path) if r[1] == "stdout"]
    assert tags[0] == ("P", "abc"), "a line without newline for 1 s is logged as partial"


def test_long_line_is_split_into_partials(cenv):
    pod = cenv.run_pod()
    st, out = cenv.output(pod, ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo"])
    assert out == ["x" * 100000]


def test_log_in_a_subdirectory_like_kubelet(cenv):
    pod = cenv.run_pod()
    os.makedirs(os.path.join(cenv.pods[pod].log_directory, "app"))
    cid = cenv.run(pod, "app", command=["echo", "hi"], log_path="app/0.log")
    st = cenv.wait_exit(cid)
    assert st.log_path == os.path.join(cenv.pods[pod].log_directory, "app", "0.log")
    assert log_lines(st.log_path) == ["hi"]


COUNTER = ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); usleep 50000; done"]


def check_counter(lines):
    nums = [int(x) for x in lines]
    assert nums == list(range(len(nums))), "gap or duplicate in %s" % nums


def test_reopen_container_log(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "rot", command=COUNTER)
    path = cenv.log_path(cid)
    wait_for(lambda: len(log_lines(path)) >= 5, 10, what="output")
    os.rename(path, path + ".1")
    cenv.c.call("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=cid))
    assert os.path.exists(path)
    wait_for(lambda: len(log_lines(path)) >= 5, 10, what="output in the new file")
    cenv.stop(cid, timeout=0)
    old, new = log_lines(path + ".1"), log_lines(path)
    assert old and new
    check_counter(old + new)


def test_reopen_log_of_a_stopped_container_fails(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "x", command=["true"])
    cenv.wait_exit(cid)
    rpc_error(cenv.c.call, "ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=cid))


# ---- ExecSync ----

def test_exec_sync_output_and_exit_code(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ex", command=SLEEPER)
    r = cenv.exec_sync(cid, ["sh", "-c", "echo out; echo err >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"out\n", b"err\n", 7)
    r = cenv.exec_sync(cid, ["id", "-u"])
    assert (r.stdout, r.exit_code) == (b"0\n", 0)
    r = cenv.exec_sync(cid, ["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' y"])
    assert r.stdout == b"y" * 200000


def test_exec_sync_sees_the_container(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ex", command=SLEEPER, envs={"FROM_REQ": "1"}, working_dir="/tmp")
    r = cenv.exec_sync(cid, ["sh", "-c", "echo $FROM_REQ; pwd; cat /proc/1/cmdline | tr '\\0' ' '"])
    assert r.stdout.decode().splitlines() == ["1", "/tmp", "sleep 3600 "]


def test_exec_sync_timeout_kills_the_process(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ex", command=SLEEPER)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError):
        cenv.exec_sync(cid, ["sleep", "31"], timeout=1)
    assert time.monotonic() - t0 < 6
    wait_for(lambda: not pids_with_argv(["sleep", "31"]), 5, what="the exec'd sleep to die")
    assert cenv.exec_sync(cid, ["true"]).exit_code == 0


def test_exec_sync_in_a_stopped_container_fails(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ex", command=["true"])
    cenv.wait_exit(cid)
    rpc_error(cenv.exec_sync, cid, ["true"])


def test_exec_sync_against_a_hung_monitor_fails_instead_of_hanging(cenv):
    """A monitor that stops answering (SIGSTOP) makes ExecSync fail with a message within the
    monitor timeout, even for more callers than its control socket's backlog holds; once it
    runs again, ExecSync works."""
    import signal
    import threading
    pod = cenv.run_pod()
    cid = cenv.run(pod, "hung", command=SLEEPER)
    (mon,) = monitors(cid)
    os.kill(mon, signal.SIGSTOP)
    results = []
    try:
        def one():
            try:
                cenv.exec_sync(cid, ["true"], timeout=5, rpc_timeout=90)
                results.append("ok")
            except grpc.RpcError as e:
                results.append((e.code(), e.details()))
        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        os.kill(mon, signal.SIGCONT)
    assert len(results) == 16, results
    # Each caller gets crisp's own answer naming the monitor, not the client's deadline.
    assert all(r != "ok" and "monitor" in r[1] for r in results), sorted(set(map(str, results)))
    wait_for(lambda: cenv.exec_sync(cid, ["true"]).exit_code == 0, 30,
             what="ExecSync to work again")


# ---- ContainerStatus and ListContainers ----

def test_container_status_fields(cenv, tmp_path):
    pod = cenv.run_pod()
    host = tmp_path / "vol"
    host.mkdir()
    mounts = [pb.Mount(container_path="/vol", host_path=str(host), readonly=True)]
    labels = {"app": "web", "io.kubernetes.container.name": "st"}
    annotations = {"note": "x", "io.kubernetes.container.restartCount": "0"}
    cid = cenv.run(pod, "st", command=SLEEPER, labels=labels, annotations=annotations,
                   mounts=mounts)
    resp = cenv.status(cid, verbose=True)
    st = resp.status
    assert st.id == cid and st.metadata.name == "st" and st.metadata.attempt == 0
    assert st.state == pb.CONTAINER_RUNNING
    assert 0 < st.created_at <= st.started_at and st.finished_at == 0
    assert st.image.image == cenv.busybox
    image = cenv.c.call("ImageStatus",
                        pb.ImageStatusRequest(image=pb.ImageSpec(image=cenv.busybox))).image
    assert st.image_ref in [image.id] + list(image.repo_digests), st.image_ref
    assert dict(st.labels) == labels and dict(st.annotations) == annotations
    assert [(m.container_path, m.host_path, m.readonly) for m in st.mounts] == \
        [("/vol", str(host), True)]
    assert st.log_path == os.path.join(cenv.pods[pod].log_directory, "st_0.log")
    info = cenv.info(cid)
    assert info and int(info["pid"]) > 0
    assert read_argv(int(info["pid"])) == SLEEPER
    listed = cenv.list(id=cid)[0]
    assert listed.pod_sandbox_id == pod and listed.image_ref == st.image_ref
    assert listed.created_at == st.created_at and listed.state == pb.CONTAINER_RUNNING
    assert dict(listed.labels) == labels and dict(listed.annotations) == annotations


def test_container_status_image_id_and_ref(cenv):
    """image_id is the image's id, the very string PullImage answered; image_ref a digested
    reference to it (a repo digest), as the proto comments say."""
    pulled = cenv.c.call("PullImage", pb.PullImageRequest(image=pb.ImageSpec(image=cenv.busybox)),
                         timeout=120).image_ref
    image = cenv.c.call("ImageStatus",
                        pb.ImageStatusRequest(image=pb.ImageSpec(image=cenv.busybox))).image
    pod = cenv.run_pod()
    cid = cenv.run(pod, "img", command=SLEEPER)
    st = cenv.status(cid).status
    assert st.image_id == pulled == image.id and image.id.startswith("sha256:")
    assert st.image_ref == image.repo_digests[0] and "@sha256:" in st.image_ref
    listed = cenv.list(id=cid)[0]
    assert (listed.image_id, listed.image_ref) == (st.image_id, st.image_ref)


def test_container_status_stop_signal(cenv):
    """The signal StopContainer sends first: the request's, else the image's, else SIGTERM."""
    pod = cenv.run_pod()
    plain = cenv.create(pod, "plain", command=SLEEPER)
    image = cenv.create(pod, "image", image=cenv.image("stopsig"), command=SLEEPER)
    asked = cenv.create(pod, "asked", command=SLEEPER, stop_signal=pb.SIGNAL_SIGRTMINPLUS1)
    assert cenv.status(plain).status.stop_signal == pb.SIGNAL_SIGTERM
    assert cenv.status(image).status.stop_signal == pb.SIGNAL_SIGUSR1
    assert cenv.status(asked).status.stop_signal == pb.SIGNAL_SIGRTMINPLUS1


def read_argv(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return [a.decode() for a in f.read().split(b"\0")[:-1]]


def test_list_containers_filters(cenv):
    pod1 = cenv.run_pod("p1")
    pod2 = cenv.run_pod("p2")
    a = cenv.run(pod1, "a", command=SLEEPER, labels={"app": "x", "tier": "1"})
    b = cenv.create(pod1, "b", command=SLEEPER, labels={"app": "x", "tier": "2"})
    c = cenv.run(pod2, "c", command=["true"], labels={"app": "y"})
    cenv.wait_exit(c)

    def ids(**f):
        return sorted(x.id for x in cenv.list(**f))

    assert ids() == sorted([a, b, c])
    assert ids(id=a) == [a]
    assert ids(id="0" * 64) == []
    assert ids(pod_sandbox_id=pod1) == sorted([a, b])
    assert ids(pod_sandbox_id=pod2) == [c]
    assert ids(state=pb.CONTAINER_RUNNING) == [a]
    assert ids(state=pb.CONTAINER_CREATED) == [b]
    assert ids(state=pb.CONTAINER_EXITED) == [c]
    assert ids(label_selector={"app": "x"}) == sorted([a, b])
    assert ids(label_selector={"app": "x", "tier": "2"}) == [b]
    assert ids(label_selector={"app": "z"}) == []
    assert ids(pod_sandbox_id=pod1, state=pb.CONTAINER_RUNNING) == [a]
    assert ids(pod_sandbox_id=pod2, label_selector={"app": "x"}) == []


# ---- resources ----

def test_update_container_resources(cenv):
    pod = cenv.run_pod()
    res = pb.LinuxContainerResources(memory_limit_in_bytes=64 * MiB, cpu_period=100000,
                                     cpu_quota=50000, cpu_shares=512)
    cid = cenv.run(pod, "upd", command=SLEEPER, resources=res)
    mem = memory_cgroup(cenv.pid(cid))
    assert mem and read_int(os.path.join(mem, "memory.limit_in_bytes")) == 64 * MiB
    new = pb.LinuxContainerResources(memory_limit_in_bytes=48 * MiB, cpu_period=100000,
                                     cpu_quota=20000, cpu_shares=256)
    cenv.c.call("UpdateContainerResources",
                pb.UpdateContainerResourcesRequest(container_id=cid, linux=new))
    assert read_int(os.path.join(mem, "memory.limit_in_bytes")) == 48 * MiB
    from container_harness import cgroups_of
    cpu = cgroups_of(cenv.pid(cid)).get("cpu,cpuacct") or cgroups_of(cenv.pid(cid)).get("cpu")
    if cpu:
        assert read_int(os.path.join(cpu, "cpu.cfs_quota_us")) == 20000
        assert read_int(os.path.join(cpu, "cpu.shares")) == 256
    st = cenv.status(cid).status
    assert st.resources.linux.memory_limit_in_bytes == 48 * MiB
    assert st.resources.linux.cpu_quota == 20000
    # An update naming one field leaves the others in the cgroup, and so in the status.
    cenv.c.call("UpdateContainerResources", pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=40 * MiB)))
    assert read_int(os.path.join(mem, "memory.limit_in_bytes")) == 40 * MiB
    st = cenv.status(cid).status.resources.linux
    assert (st.memory_limit_in_bytes, st.cpu_quota, st.cpu_shares) == (40 * MiB, 20000, 256)
    if cpu:
        assert read_int(os.path.join(cpu, "cpu.cfs_quota_us")) == 20000
    cenv.d.restart()
    assert cenv.status(cid).status.resources.linux == st


def test_update_resources_of_an_unknown_container_is_not_found(cenv):
    err = rpc_error(cenv.c.call, "UpdateContainerResources",
                    pb.UpdateContainerResourcesRequest(
                        container_id="a" * 64,
                        linux=pb.LinuxContainerResources(memory_limit_in_bytes=64 * MiB)))
    assert err.code() == grpc.StatusCode.NOT_FOUND


# ---- ImageFsInfo ----

def du(path):
    """(bytes in blocks, inodes) below path, the top directory itself left out, as du -s."""
    b = int(subprocess.run(["du", "-s", "-B1", path], check=True, capture_output=True,
                           text=True).stdout.split()[0])
    i = int(subprocess.run(["du", "-s", "--inodes", path], check=True, capture_output=True,
                           text=True).stdout.split()[0])
    return b - os.lstat(path).st_blocks * 512, i - 1


def test_image_fs_info_reports_images_and_writable_layers(cenv):
    pod = cenv.run_pod()
    cids = [cenv.run(pod, "w%d" % n, command=["sh", "-c", "dd if=/dev/zero of=/big bs=1M "
                                                        "count=%d; mkdir -p /d/e; sleep 3600"
                                                 % (4 * (n + 1))])
            for n in range(2)]
    uppers = [os.path.join(cenv.d.root, "containers", cid, "upper") for cid in cids]
    wait_for(lambda: all(du(u)[0] >= 4 * (n + 1) * MiB for n, u in enumerate(uppers)),
             what="the writes")
    resp = cenv.c.call("ImageFsInfo", pb.ImageFsInfoRequest())
    [image], [layers] = resp.image_filesystems, resp.container_filesystems
    storage = os.path.join(cenv.d.root, "storage")
    assert image.fs_id.mountpoint == storage
    # One filesystem for both: the same mountpoint, or the kubelet would see a split one.
    assert layers.fs_id.mountpoint == storage
    assert os.stat(storage).st_dev == os.stat(uppers[0]).st_dev
    now = time.time_ns()
    assert now - 60 * NS < image.timestamp <= now and now - 60 * NS < layers.timestamp <= now
    used, inodes = du(storage)
    assert abs(image.used_bytes.value - used) <= 64 * 1024, (image.used_bytes.value, used)
    assert abs(image.inodes_used.value - inodes) <= 4, (image.inodes_used.value, inodes)
    want = [du(u) for u in uppers]
    assert layers.used_bytes.value == sum(b for b, _ in want)
    assert layers.inodes_used.value == sum(i for _, i in want)
    assert layers.used_bytes.value >= 12 * MiB and layers.inodes_used.value >= 6
    stats = [cenv.c.call("ContainerStats", pb.ContainerStatsRequest(container_id=cid))
             .stats.writable_layer for cid in cids]
    assert layers.used_bytes.value == sum(w.used_bytes.value for w in stats)
    fs = os.statvfs(storage)
    assert image.used_bytes.value + layers.used_bytes.value <= \
        (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    assert image.inodes_used.value + layers.inodes_used.value <= fs.f_files - fs.f_ffree


# ---- pods, images and their containers ----

def test_stop_pod_kills_its_containers(cenv):
    pod = cenv.run_pod()
    a = cenv.run(pod, "a", command=STUBBORN)
    b = cenv.run(pod, "b", command=SLEEPER)
    pids = [cenv.pid(a), cenv.pid(b)]
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    for cid in (a, b):
        assert cenv.state(cid) == pb.CONTAINER_EXITED
    assert not any(alive(p) for p in pids)
    assert not monitors(a) and not monitors(b)


def test_remove_pod_removes_its_containers(cenv):
    pod = cenv.run_pod()
    other = cenv.run_pod("other")
    a = cenv.run(pod, "a", command=SLEEPER)
    b = cenv.create(pod, "b", command=SLEEPER)
    keep = cenv.run(other, "keep", command=SLEEPER)
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    for cid in (a, b):
        assert rpc_error(cenv.status, cid).code() == grpc.StatusCode.NOT_FOUND
    assert [c.id for c in cenv.list()] == [keep]
    assert cenv.state(keep) == pb.CONTAINER_RUNNING


def test_remove_running_pod_removes_its_running_containers(cenv):
    pod = cenv.run_pod()
    a = cenv.run(pod, "a", command=SLEEPER)
    pid = cenv.pid(a)
    cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    assert not alive(pid)
    assert not cenv.list()


def test_remove_image_refused_while_a_container_uses_it(cenv):
    pod = cenv.run_pod()
    image = cenv.image("entry")
    cid = cenv.create(pod, "user", image=image, command=SLEEPER)
    spec = pb.ImageSpec(image=image)
    rpc_error(cenv.c.call, "RemoveImage", pb.RemoveImageRequest(image=spec))
    assert cenv.c.call("ImageStatus", pb.ImageStatusRequest(image=spec)).image.id
    cenv.start(cid)
    cenv.stop(cid, timeout=0)
    rpc_error(cenv.c.call, "RemoveImage", pb.RemoveImageRequest(image=spec))
    cenv.remove(cid)
    cenv.c.call("RemoveImage", pb.RemoveImageRequest(image=spec))
    assert not cenv.c.call("ImageStatus", pb.ImageStatusRequest(image=spec)).HasField("image")


def test_writable_layer_is_per_container(cenv):
    pod = cenv.run_pod()
    a = cenv.run(pod, "a", command=SLEEPER)
    b = cenv.run(pod, "b", command=SLEEPER)
    assert cenv.exec_sync(a, ["sh", "-c", "echo mine > /etc/motd; rm /bin/true"]).exit_code == 0
    r = cenv.exec_sync(b, ["sh", "-c", "cat /etc/motd; ls /bin/true"])
    assert r.stdout == b"/bin/true\n" and b"No such file" in r.stderr
    r = cenv.exec_sync(a, ["sh", "-c", "cat /etc/motd; ls /bin/true"])
    assert r.stdout == b"mine\n" and r.exit_code != 0


# ---- the monitor's own cgroup ----

def test_monitor_is_placed_in_its_configured_cgroup(crisp_factory, registry, tmp_path):
    from container_harness import finish_env, make_env, push_extra_images
    name = "crisp-test-monitors-%d" % os.getpid()
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir,
                   config="[runtime.runc]\nmonitor-cgroup = /%s\n" % name)
    try:
        pod = env.run_pod()
        cid = env.run(pod, "m", command=SLEEPER)
        [mon] = monitors(cid)
        with open("/proc/%d/cgroup" % mon) as f:
            lines = f.read().splitlines()
        memory = [l for l in lines if ":memory:" in l]
        assert memory and memory[0].endswith(":/" + name), lines
        # ... while the container itself lives in its own cgroup, not the monitors'.
        with open("/proc/%d/cgroup" % env.pid(cid)) as f:
            assert ":/" + name not in f.read()
    finally:
        leaks = finish_env(env)
        busy = remove_cgroup(name)
        assert not busy, "monitor cgroup %s still busy" % busy
    assert not leaks, "leaked: %s" % leaks
