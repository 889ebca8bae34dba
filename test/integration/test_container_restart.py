"""The design's promise: crisp can be killed (kill -9) or stopped and started again while
containers run, and nothing is lost.  Every running container is still running with the same
pid and status; one that exited while crisp was down shows its exit code; a container printing
a counter every 50 ms has no gap and no duplicate in its log across the restart; ExecSync,
stop and remove work afterwards; there is exactly one monitor per running container."""
import os
import re
import select
import signal
import time

import pytest

import leakcheck
from container_harness import (GRACEFUL, SLEEPER, alive, cenv, log_lines,  # noqa: F401
                               monitors, parse_log, runc_status, ts_ns, wait_for)
from cri_client import pb

COUNTER = ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); usleep 50000; done"]


def counter_values(path):
    return [int(x) for x in log_lines(path, "stdout")]


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_containers_survive_a_restart(cenv, how, tmp_path):
    pod = cenv.run_pod()
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    sleeper = cenv.run(pod, "sleeper", command=SLEEPER, labels={"k": "v"})
    counter = cenv.run(pod, "counter", command=COUNTER)
    # Exits with 5 once the host creates ctl/go: that happens while crisp is down.
    exiting = cenv.run(pod, "exiting", mounts=[pb.Mount(container_path="/ctl",
                                                         host_path=str(ctl))],
                       command=["sh", "-c", "while [ ! -e /ctl/go ]; do usleep 50000; done; "
                                            "exit 5"])
    created = cenv.create(pod, "created", command=SLEEPER)
    done = cenv.run(pod, "done", command=["sh", "-c", "exit 4"])
    cenv.wait_exit(done)
    pids = {cid: cenv.pid(cid) for cid in (sleeper, counter, exiting)}
    before = {cid: cenv.status(cid).status for cid in (sleeper, counter, exiting, created, done)}
    counter_log = before[counter].log_path
    wait_for(lambda: len(counter_values(counter_log)) >= 5, 10, what="counter output")

    if how == "kill9":
        cenv.d.kill9()
    else:
        assert cenv.d.stop() == 0
    # While crisp is down: the counter keeps logging, and one container exits.
    n_down = len(counter_values(counter_log))
    (ctl / "go").touch()
    wait_for(lambda: not alive(pids[exiting]), 5, what="the container to exit")
    time.sleep(1.0)
    assert len(counter_values(counter_log)) >= n_down + 10, "logging stopped with crisp down"
    cenv.d.start()

    for cid in (sleeper, counter):
        st = cenv.status(cid).status
        assert st.state == pb.CONTAINER_RUNNING, cid
        assert cenv.pid(cid) == pids[cid]
        assert st.created_at == before[cid].created_at
        assert st.started_at == before[cid].started_at
        assert st.log_path == before[cid].log_path
        assert dict(st.labels) == dict(before[cid].labels)
        assert len(monitors(cid)) == 1, "monitors of %s: %s" % (cid[:12], monitors(cid))

    st = cenv.wait_exit(exiting, 10)
    assert st.exit_code == 5 and st.reason == "Error"
    assert st.finished_at > before[exiting].started_at
    assert not monitors(exiting)
    assert cenv.state(created) == pb.CONTAINER_CREATED
    st = cenv.status(done).status
    assert (st.state, st.exit_code, st.finished_at) == \
        (pb.CONTAINER_EXITED, 4, before[done].finished_at)
    assert sorted(c.id for c in cenv.list()) == sorted([sleeper, counter, exiting, created,
                                                         done])

    r = cenv.exec_sync(sleeper, ["sh", "-c", "echo alive"])
    assert (r.stdout, r.exit_code) == (b"alive\n", 0)

    time.sleep(0.5)
    cenv.stop(counter, timeout=0)
    values = counter_values(counter_log)
    assert values == list(range(len(values))), "gap or duplicate across the restart"
    stamps = [ts_ns(rec[0]) for rec in parse_log(counter_log)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) < 10**9, "the log paused %.2f s" % (max(gaps) / 1e9)

    cenv.start(created)
    assert cenv.state(created) == pb.CONTAINER_RUNNING
    for cid in (sleeper, counter, exiting, created, done):
        cenv.remove(cid)
    assert not cenv.list()


def test_exit_while_down_is_graceful_exit_code(cenv):
    """A container that ends by itself with code 0 while crisp is down is Completed."""
    pod = cenv.run_pod()
    cid = cenv.run(pod, "quick", command=["sh", "-c", "sleep 2; echo bye"])
    cenv.d.kill9()
    time.sleep(3)
    cenv.d.start()
    st = cenv.wait_exit(cid, 10)
    assert st.exit_code == 0 and st.reason == "Completed"
    assert log_lines(st.log_path) == ["bye"]


def test_two_restarts_in_a_row(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "g", command=GRACEFUL)
    pid = cenv.pid(cid)
    for _ in range(2):
        cenv.d.kill9()
        cenv.d.start()
        assert cenv.state(cid) == pb.CONTAINER_RUNNING and cenv.pid(cid) == pid
        assert len(monitors(cid)) == 1
    t0 = time.monotonic()
    cenv.stop(cid, timeout=10)
    assert time.monotonic() - t0 < 5
    st = cenv.status(cid).status
    assert st.exit_code == 0 and st.reason == "Completed"


def test_stop_after_restart_uses_the_timeout(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "s", command=SLEEPER)
    cenv.d.kill9()
    cenv.d.start()
    t0 = time.monotonic()
    cenv.stop(cid, timeout=0)
    assert time.monotonic() - t0 < 2
    assert cenv.status(cid).status.exit_code == 137


def test_pod_with_containers_survives_a_restart(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "s", command=SLEEPER)
    cenv.d.kill9()
    cenv.d.start()
    pods = cenv.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [(p.id, p.state) for p in pods] == [(pod, pb.SANDBOX_READY)]
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    assert cenv.state(cid) == pb.CONTAINER_EXITED
    cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    assert not cenv.list()


def standbys(daemon, after=0):
    """Pids of the standby monitors a crisp's log says it made, from byte `after` on."""
    with open(daemon.log_path, "rb") as f:
        f.seek(after)
        return [int(m) for m in re.findall(rb"standby monitor (\d+) ready", f.read())]


def log_size(daemon):
    return os.path.getsize(daemon.log_path)


def test_a_standby_monitor_takes_the_next_container_and_leaves_with_crisp(cenv):
    first = wait_for(lambda: standbys(cenv.d), what="a standby monitor")[-1]
    assert alive(first) and "--standby" in leakcheck.read_cmdline(first)
    pod = cenv.run_pod()
    mark = log_size(cenv.d)
    cid = cenv.run(pod, "taken", command=SLEEPER)
    # The standby became this container's monitor, and shows its options as any monitor.
    assert monitors(cid) == [first]
    assert "--standby" not in leakcheck.read_cmdline(first)
    second = wait_for(lambda: standbys(cenv.d, mark), what="the next standby")[-1]
    assert second != first and alive(second)
    # A kill leaves nothing: the standby's socket closes with crisp and it goes.
    cenv.d.kill9()
    wait_for(lambda: not alive(second), what="the standby to leave with crisp")
    mark = log_size(cenv.d)
    cenv.d.start()
    third = wait_for(lambda: standbys(cenv.d, mark), what="a standby after the restart")[-1]
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    # A stop waits for its standby to be gone.
    cenv.d.stop()
    assert not alive(third)
    assert alive(first)  # the container's monitor outlives crisp
    cenv.d.start()


def test_a_create_whose_standby_monitor_was_killed_starts_its_own(cenv):
    standby = wait_for(lambda: standbys(cenv.d), what="a standby monitor")[-1]
    os.kill(standby, signal.SIGKILL)
    wait_for(lambda: not alive(standby), what="the standby to die")
    pod = cenv.run_pod()
    cid = cenv.run(pod, "own", command=SLEEPER)
    mons = monitors(cid)
    assert len(mons) == 1 and mons[0] != standby
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    with open(cenv.d.log_path, "rb") as f:
        assert b"the standby monitor %d was gone" % standby in f.read()


def test_kill9_during_runtime_create_leaves_nothing(crisp_factory, registry, tmp_path):
    """crisp killed while 'runtime create' runs: the next start removes the half-made
    container, its monitor and whatever the create had started; nothing comes back later."""
    from container_harness import finish_env, make_env, push_extra_images
    marker = tmp_path / "create-started"
    script = tmp_path / "slow-runc"
    script.write_text("#!/bin/sh\n"
                      "for a in \"$@\"; do [ \"$a\" = create ] && { touch %s; sleep 8; }; done\n"
                      "exec /usr/sbin/runc \"$@\"\n" % marker)
    script.chmod(0o755)
    runtime_root = tmp_path / "slow-root"
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir,
                   config="[runtime.slow]\npath = %s\nroot = %s\n" % (script, runtime_root))
    try:
        cfg = env.pod_config("slowpod")
        os.makedirs(cfg.log_directory, exist_ok=True)
        pod = env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(
            config=cfg, runtime_handler="slow")).pod_sandbox_id
        env.pods[pod] = cfg
        ccfg = env.config("half", command=SLEEPER)
        ccfg.linux.security_context.namespace_options.CopyFrom(
            cfg.linux.security_context.namespace_options)
        fut = env.c.future("CreateContainer", pb.CreateContainerRequest(
            pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg), timeout=60)
        wait_for(marker.exists, 20, what="runtime create to start")
        # The standby monitor took this create: the restart must find it through the record.
        mons = monitors(str(env.d.run_root))
        assert len(mons) == 1 and mons[0] in standbys(env.d), (mons, standbys(env.d))
        env.d.kill9()
        fut.exception()  # the call died with crisp
        env.d.start()
        assert not env.c.call("ListContainers").containers
        time.sleep(9)  # past the moment the slow create would have finished
        assert not monitors(str(env.d.run_root))
        leftovers = os.listdir(runtime_root) if runtime_root.exists() else []
        assert leftovers == [], "runtime state left: %s" % leftovers
        assert not any(str(env.d.tmp) in line.split()[4] for line in open("/proc/self/mountinfo")
                       if "/containers/" in line.split()[4])
    finally:
        leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks


def release_like_a_start(fifo):
    """What a start does to runc's exec fifo up to its removal: open it, read the init's byte
    and on to the end (the init's exec)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            select.select([fd], [], [], 1)
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                continue
            if not chunk:
                break
            got += chunk
        assert got, "runc's init wrote nothing into its exec fifo"
    finally:
        os.close(fd)


def test_a_start_killed_after_it_released_the_init_is_finished_by_the_retry(cenv):
    """crisp starts a runc container itself, through runc's exec fifo: a kill after the init
    was released and before the fifo was removed leaves runc saying "created" about a
    container that runs.  crisp restarted must see it running, and the kubelet's retried
    start must succeed without waiting for an init that is long gone."""
    pod = cenv.run_pod()
    cid = cenv.create(pod, "half-started", command=COUNTER)
    assert runc_status(cenv, cid) == "created"
    cenv.d.kill9()
    fifo = os.path.join(cenv.d.run_root, "runtime", "runc", cid, "exec.fifo")
    release_like_a_start(fifo)
    assert os.path.exists(fifo) and runc_status(cenv, cid) == "created"
    cenv.d.start()
    t0 = time.monotonic()
    cenv.start(cid)
    assert time.monotonic() - t0 < 5
    assert cenv.state(cid) == pb.CONTAINER_RUNNING
    wait_for(lambda: len(counter_values(cenv.log_path(cid))) >= 2, 10, what="the counter")
    cenv.stop(cid, timeout=0)
    assert cenv.state(cid) == pb.CONTAINER_EXITED
