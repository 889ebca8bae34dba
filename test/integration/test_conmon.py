"""crisp-conmon driven directly: a busybox bundle, runc with a per-test root, the monitor
started the way crisp starts it (conmon_harness.Monitor)."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import conmon_harness as H  # noqa: E402
from leakcheck import Scope, read_cmdline  # noqa: E402

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers"),
    pytest.mark.skipif(not os.path.exists(H.RUNC), reason="needs runc"),
    pytest.mark.skipif(not os.path.exists(H.BUSYBOX), reason="needs busybox-static"),
    pytest.mark.skipif(not os.path.exists(H.conmon_path()),
                       reason="crisp-conmon not built (set CRISP_BUILDDIR)"),
]


@pytest.fixture
def ctr(tmp_path):
    """ctr(args, **bundle_options, extra=[monitor flags]) -> a Monitor, spawned (not started);
    every container, cgroup and monitor is removed at teardown."""
    made, cgroups = [], []

    def make(args, extra=(), spawn=True, runtime=None, runtime_fd=None, **bundle_kw):
        n = len(made)
        tmp = str(tmp_path / ("c%d" % n))
        os.makedirs(tmp)
        if bundle_kw.get("cgroups_path"):
            cgroups.append(bundle_kw["cgroups_path"])
        bundle = H.make_bundle(os.path.join(tmp, "bundle"), args, **bundle_kw)
        cid = "conmon-test-%s" % uuid.uuid4().hex[:12]
        m = H.Monitor(tmp, cid, bundle, os.path.join(tmp, "runc"), extra=extra, runtime=runtime,
                      runtime_fd=runtime_fd)
        made.append(m)
        if spawn:
            assert m.spawn(), m.error
        return m

    yield make
    for m in made:
        m.cleanup()
    for cg in cgroups:
        for ctrl in os.listdir("/sys/fs/cgroup"):
            d = "/sys/fs/cgroup/%s%s" % (ctrl, cg)
            for _ in range(100):  # a killed container takes a moment to leave its cgroup
                if not os.path.isdir(d):
                    break
                try:
                    os.rmdir(d)
                except OSError:
                    time.sleep(0.02)
    # What the cleanup above could not remove (runc state, mounts, cgroups, a monitor that
    # survived SIGKILL) is a leak.
    scope = Scope(str(tmp_path), runc_roots=[m.root for m in made], cgroup_names=cgroups)
    leaks = scope.leaks(monitor_grace=2)
    scope.clean()
    assert not leaks, "leaked: %s" % leaks


def runc_state(m):
    return subprocess.run([H.RUNC, "--root", m.root, "state", m.cid], capture_output=True)


def test_exit_code_and_delete(ctr):
    m = ctr(["sh", "-c", "exit 3"])
    assert m.container_pid > 0 and m.alive()
    info = H.read_kv(os.path.join(m.state, "monitor"))
    assert info["pid"] == str(m.pid) and info["container_pid"] == str(m.container_pid)
    m.start()
    m.wait_exit()
    ex = m.exit_file()
    assert ex["version"] == str(H.VERSION) and ex["status"] == "3" and ex["signal"] == "0"
    assert ex["oom_killed"] == "0"
    assert abs(int(ex["exited_at_ns"]) / 1e9 - time.time()) < 60
    assert runc_state(m).returncode != 0, "runtime delete did not run"
    assert not os.path.exists(os.path.join(m.state, "ctl"))


def test_signal_exit_and_no_delete(ctr):
    m = ctr(["sleep", "1000"], extra=["--no-delete"])
    m.start()
    os.kill(m.container_pid, signal.SIGKILL)
    m.wait_exit()
    ex = m.exit_file()
    assert ex["status"] == "137" and ex["signal"] == "9"
    assert b'"status": "stopped"' in runc_state(m).stdout


def test_create_failure_reports_runtime_message(ctr):
    m = ctr(["/no/such/binary"], spawn=False)
    assert not m.spawn()
    assert "no/such/binary" in m.error, m.error
    m.wait_exit()


def test_log_lines_byte_for_byte(ctr):
    script = ("printf 'one\\n\\ntwo\\n'; printf 'err line\\n' >&2; printf 'half'; sleep 1;"
              "printf ' done\\n'; printf '%0250d\\n' 7; printf 'tail'")
    m = ctr(["sh", "-c", script], extra=["--log-max-line", "100"])
    m.start()
    m.wait_exit()
    recs = H.parse_log(m.read_log())
    out = [(t, c) for s, t, c in recs if s == "stdout"]
    assert out == [("F", b"one"), ("F", b""), ("F", b"two"), ("P", b"half"), ("F", b" done"),
                   ("P", b"0" * 100), ("P", b"0" * 100), ("F", b"0" * 49 + b"7"),
                   ("P", b"tail")]
    assert [(t, c) for s, t, c in recs if s == "stderr"] == [("F", b"err line")]


def test_log_reopen_after_rename(ctr):
    m = ctr(["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); sleep 0.01;"
             " done"])
    m.start()
    assert H.wait_for(lambda: b"line20\n" in m.read_log())
    os.rename(m.log_path, m.log_path + ".1")
    typ, r, _, _ = m.ctl(H.REOPEN_LOG)
    assert (typ, r) == (H.REPLY, 0)
    m.wait_exit(30)
    old = H.parse_log(open(m.log_path + ".1", "rb").read())
    new = H.parse_log(m.read_log())
    assert old and new
    lines = [c for s, t, c in old + new]
    assert lines == [b"line%d" % i for i in range(400)]


def attach_read_until(sock, want, streams=(H.STDOUT,)):
    got = b""
    while want not in got:
        pkt = sock.recv(65536)
        assert pkt, "attach socket closed with %r" % got
        if pkt[0] in streams:
            got += pkt[1:]
    return got


def test_attach_two_clients(ctr):
    m = ctr(["sh", "-c", "while read l; do [ \"$l\" = quit ] && exit 0; "
             "echo \"got $l\"; echo \"err $l\" >&2; done"],
            extra=["--stdin"])
    m.start()
    a, b = m.connect("attach"), m.connect("attach")
    a.send(bytes([H.STDIN]) + b"x\n")
    assert b"got x\n" in attach_read_until(a, b"got x\n")
    assert b"got x\n" in attach_read_until(b, b"got x\n")
    assert b"err x" in attach_read_until(b, b"err x\n", (H.STDERR,))
    a.close()
    b.send(bytes([H.STDIN]) + b"y\n")
    attach_read_until(b, b"got y\n")
    c = m.connect("attach")
    c.send(bytes([H.STDIN]) + b"z\n")
    attach_read_until(c, b"got z\n")
    attach_read_until(b, b"got z\n")
    # Without stdin_once a client closing its input ends only its own input: the container's
    # stdin stays open for the others.
    c.send(bytes([H.CLOSE_STDIN]))
    b.send(bytes([H.STDIN]) + b"w\n")
    attach_read_until(b, b"got w\n")
    assert m.alive()
    b.send(bytes([H.STDIN]) + b"quit\n")
    m.wait_exit()
    while b.recv(65536) != b"":  # the monitor closes clients at the container's exit
        pass
    assert m.exit_file()["status"] == "0"
    logged = [c for s, t, c in H.parse_log(m.read_log()) if s == "stdout"]
    assert logged == [b"got x", b"got y", b"got z", b"got w"]


def test_stdin_once_closes_stdin_when_first_client_leaves(ctr):
    m = ctr(["sh", "-c", "cat; echo eof"], extra=["--stdin", "--stdin-once"])
    m.start()
    a = m.connect("attach")
    a.send(bytes([H.STDIN]) + b"hello\n")
    attach_read_until(a, b"hello\n")
    a.close()
    m.wait_exit()
    assert m.exit_file()["status"] == "0"
    assert [c for s, t, c in H.parse_log(m.read_log())] == [b"hello", b"eof"]


def test_terminal_and_resize(ctr):
    m = ctr(["sh", "-c", "sleep 1; stty size; echo done"], terminal=True,
            extra=["--terminal"])
    m.start()
    typ, r, _, _ = m.ctl(H.RESIZE, 40, 123)
    assert (typ, r) == (H.REPLY, 0)
    m.wait_exit()
    recs = H.parse_log(m.read_log())
    assert [(s, c) for s, t, c in recs] == [("stdout", b"40 123\r"), ("stdout", b"done\r")]


def test_exec(ctr):
    m = ctr(["sleep", "1000"])
    m.start()
    code, flags, out, err = m.exec(["sh", "-c", "echo hi; echo oops >&2; exit 7"])
    assert (code, flags, out, err) == (7, 0, b"hi\n", b"oops\n")
    assert m.exec(["sh", "-c", "echo $FOO"], env=["FOO=bar"])[2] == b"bar\n"
    typ, r, v, _ = m.ctl(H.VERSION_REQ)
    assert (typ, r, v) == (H.REPLY, 0, H.VERSION)
    assert m.ctl(25)[:2] == (H.REPLY, -95)  # reserved for streaming sessions: EOPNOTSUPP


def test_exec_timeout_kills_the_process(ctr):
    m = ctr(["sleep", "1000"])
    m.start()
    t0 = time.monotonic()
    code, flags, out, _ = m.exec(["sh", "-c", "echo start; exec sleep 101"], timeout_ms=500)
    assert time.monotonic() - t0 < 10
    assert flags & H.TIMED_OUT and code == 137 and out == b"start\n"
    ps = m.exec(["ps", "-o", "args"])[2]
    assert b"sleep 101" not in ps, ps


def test_exec_output_bound(ctr):
    m = ctr(["sleep", "1000"])
    m.start()
    code, flags, out, _ = m.exec(["head", "-c", "3000000", "/dev/zero"], output_max=100000)
    assert code == 0 and flags == H.TRUNCATED and out == b"\0" * 100000
    code, flags, out, _ = m.exec(["head", "-c", "3000000", "/dev/zero"])
    assert code == 0 and flags == 0 and len(out) == 3000000


@pytest.mark.parametrize("streams", ["stdout", "both"])
def test_exec_to_a_slow_reader_loses_nothing(ctr, streams):
    # The exec ends while the socket to its reader is full: the last output packets and the
    # exit wait for room instead of being dropped or overwritten.  The socket takes a burst of
    # a few packets each time the reader frees room; one of eight sizes a packet apart ends its
    # output on the packet that fills the socket.
    m = ctr(["sleep", "1000"])
    m.start()
    for k in range(8):
        n = (40 + k) * 32 * 1024
        cmd = "head -c %d /dev/zero" % n
        if streams == "both":
            cmd = "%s & %s >&2; wait" % (cmd, cmd)
        try:
            code, flags, out, err = m.exec(["sh", "-c", cmd + "; exit 4"], first_read_after=0.3,
                                           read_gap=0.001)
        except EOFError:
            pytest.fail("size %d: the monitor hung up before the exit" % n)
        assert (code, flags, len(out)) == (4, 0, n)
        assert len(err) == (n if streams == "both" else 0)


def test_a_full_control_socket_makes_callers_wait_not_fail(ctr):
    # Every control slot taken: the next caller waits in the listen backlog and is answered
    # once a slot frees; it is never accepted only to be hung up on.
    m = ctr(["sleep", "1000"])
    m.start()
    held = [m.connect("ctl") for _ in range(16)]
    for s in held:  # each one accepted: it answers
        H.send_msg(s, H.VERSION_REQ)
        assert H.recv_msg(s)[:2] == (H.REPLY, 0)
    late = m.connect("ctl")
    H.send_msg(late, H.VERSION_REQ)
    late.settimeout(0.5)
    with pytest.raises(socket.timeout):
        late.recv(1 << 16)  # no slot yet: not answered, and not closed
    held.pop().close()
    late.settimeout(20)
    assert H.recv_msg(late)[:3] == (H.REPLY, 0, H.VERSION)
    for s in held + [late]:
        s.close()
    assert m.ctl(H.VERSION_REQ)[:2] == (H.REPLY, 0)


STARTER = r"""
import os, sys, time
sys.path.insert(0, %r)
import conmon_harness as H
m = H.Monitor(%r, %r, %r, %r)
assert m.spawn()
print(m.pid, m.container_pid, flush=True)
time.sleep(1000)
"""


def test_monitor_survives_its_starter(ctr, tmp_path):
    tmp = str(tmp_path / "s")
    os.makedirs(tmp)
    bundle = H.make_bundle(os.path.join(tmp, "bundle"), ["sleep", "1000"])
    cid = "conmon-test-%s" % uuid.uuid4().hex[:12]
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER % (os.path.dirname(__file__), tmp, cid, bundle,
                                          os.path.join(tmp, "runc"))],
        stdout=subprocess.PIPE, start_new_session=True)
    m = H.Monitor.__new__(H.Monitor)
    m.cid, m.root, m.state, m.pid = cid, os.path.join(tmp, "runc"), os.path.join(tmp, "state"), 0
    try:
        m.pid, m.container_pid = map(int, starter.stdout.readline().split())
        m.start()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
            os.killpg(starter.pid, sig)
        starter.wait()
        time.sleep(0.3)
        assert m.alive()
        os.kill(m.container_pid, 0)
        os.kill(m.container_pid, signal.SIGTERM)  # pid 1 ignores it: no handler
        os.kill(m.container_pid, signal.SIGKILL)
        m.wait_exit()
        assert H.read_kv(os.path.join(m.state, "exit"))["status"] == "137"
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        m.cleanup()


def proc_stat(pid):
    """(ppid, pgrp, session) of pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[2]), int(fields[3])


# As crisp starts it (a plain child), as a session leader, and as a process group leader
# that leads no session (which cannot call setsid itself: the monitor forks once more).
@pytest.mark.parametrize("how", [{}, {"start_new_session": True}, {"process_group": 0}],
                         ids=["child", "session-leader", "group-leader"])
def test_monitor_leaves_its_starter_in_a_session_it_does_not_lead(ctr, how):
    m = ctr(["sleep", "1000"], spawn=False)
    assert m.spawn(**how), m.error
    ppid, pgrp, sid = proc_stat(m.pid)
    assert ppid != os.getpid()  # not the starter's child
    assert sid != os.getsid(0) and pgrp != os.getpgid(0)  # out of the starter's session
    assert sid != m.pid and pgrp != m.pid  # leads nothing: no controlling tty can come to it
    m.start()
    os.kill(m.container_pid, signal.SIGKILL)
    m.wait_exit()


def cmdline(pid):
    """Its command line without the NULs a standby leaves after its assigned options."""
    return [a for a in read_cmdline(pid) if a]


def test_a_standby_monitor_runs_the_container_it_is_given(ctr):
    m = ctr(["sh", "-c", "echo from-standby; sleep 1000"], spawn=False)
    standby_argv = None

    def before_go(mon):
        nonlocal standby_argv
        standby_argv = cmdline(mon.pid)

    assert m.spawn(standby=True, before_go=before_go), m.error
    assert m.pid == m.standby_pid  # the process that waited is the one that runs it
    # Once given its container, it shows that container's options, as a monitor crisp
    # started directly does (crisp finds a lost container's monitor by them).
    assert standby_argv == [H.conmon_path()] + [a.decode() for a in m.options().split(b"\0")
                                                if a]
    ppid, pgrp, sid = proc_stat(m.pid)
    assert ppid != os.getpid() and sid != m.pid and pgrp != m.pid
    m.start()
    assert H.wait_for(lambda: b"from-standby" in m.read_log())
    code, _, out, _ = m.exec(["echo", "exec-ok"])
    assert (code, out) == (0, b"exec-ok\n")
    os.kill(m.container_pid, signal.SIGKILL)
    m.wait_exit()
    assert m.exit_file()["status"] == "137"


def memfds(pid):
    """Inodes of the memfds pid holds open."""
    found = set()
    for n in os.listdir("/proc/%d/fd" % pid):
        p = "/proc/%d/fd/%s" % (pid, n)
        try:
            if os.readlink(p).startswith("/memfd:"):
                found.add(os.stat(p).st_ino)
        except FileNotFoundError:
            pass
    return found


@pytest.mark.parametrize("standby", [False, True], ids=["started", "standby"])
def test_the_runtime_runs_from_the_sealed_copy_it_is_given(ctr, standby):
    """runc started from a sealed memfd takes it for its own copy: its init waiting to be
    started runs from that very memfd, which the monitor keeps and no container process
    gets."""
    fd = H.sealed_copy(H.RUNC)
    try:
        m = ctr(["sleep", "1000"], spawn=False, runtime_fd=fd)
        assert m.spawn(standby=standby), m.error
        copy = os.fstat(fd).st_ino
        assert os.stat("/proc/%d/exe" % m.container_pid).st_ino == copy
        assert copy in memfds(m.pid)
        m.start()
        assert H.wait_for(lambda: os.readlink("/proc/%d/exe" % m.container_pid)
                          != "/memfd:runc (deleted)")
        assert not memfds(m.container_pid)
        code, _, out, _ = m.exec(["echo", "exec-ok"])
        assert (code, out) == (0, b"exec-ok\n")
        os.kill(m.container_pid, signal.SIGKILL)
        m.wait_exit()
        assert m.exit_file()["status"] == "137"
    finally:
        os.close(fd)


def test_a_copy_that_cannot_run_leaves_the_runtime_path(ctr, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a program\n")
    fd = H.sealed_copy(str(junk))
    try:
        m = ctr(["sleep", "1000"], spawn=False, runtime_fd=fd)
        assert m.spawn(standby=True), m.error
        assert os.stat("/proc/%d/exe" % m.container_pid).st_ino != os.fstat(fd).st_ino
        m.start()
        os.kill(m.container_pid, signal.SIGKILL)
        m.wait_exit()
    finally:
        os.close(fd)


def test_a_standby_monitor_leaves_when_its_socket_closes():
    sock = H.spawn_standby()
    pid = H.standby_pid(sock)
    assert H.alive(pid)
    assert cmdline(pid)[1:4] == ["--standby", "--sync-fd", cmdline(pid)[3]]
    sock.close()
    assert H.wait_for(lambda: not H.alive(pid), 10), "the standby monitor is still there"


@pytest.mark.parametrize("payload", [b"--bogus\0", b"--id\0x\0", b"--sync-fd\0" b"5\0",
                                     b"--standby\0", b"--id\0unterminated",
                                     b"\0" * 64 + b"--id\0"],
                         ids=["unknown", "incomplete", "sync-fd", "standby", "unterminated",
                              "too-many"])
def test_a_standby_monitor_refuses_bad_options(payload):
    sock = H.spawn_standby()
    pid = H.standby_pid(sock)
    try:
        H.send_msg(sock, H.ASSIGN, payload=payload)
        typ, a0, _, text = H.recv_msg(sock)
        assert typ == H.FAILED and a0 < 0
        assert b"standby monitor's options" in text
        assert H.wait_for(lambda: not H.alive(pid), 10)
    finally:
        sock.close()


def fd_targets(pid):
    d = "/proc/%d/fd" % pid
    out = {}
    for fd in os.listdir(d):
        try:
            out[int(fd)] = os.readlink(os.path.join(d, fd))
        except FileNotFoundError:
            pass  # closed meanwhile
    return out


def test_no_descriptor_leaks(ctr, tmp_path):
    # A descriptor crisp forgot to mark O_CLOEXEC must not reach the monitor either.
    stray = os.open(str(tmp_path), os.O_RDONLY)
    os.set_inheritable(stray, True)
    try:
        m = ctr(["sleep", "1000"], extra=["--stdin"])
    finally:
        os.close(stray)
    m.start()
    # Until runc's init has exec'd the command it still holds its own descriptors.
    deadline = time.monotonic() + 10
    while open("/proc/%d/comm" % m.container_pid).read().startswith("runc"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert sorted(fd_targets(m.container_pid)) == [0, 1, 2]
    mon = fd_targets(m.pid)
    assert str(tmp_path) not in mon.values()
    assert all(t == "/dev/null" for fd, t in mon.items() if fd < 3), mon
    m.exec(["true"])
    assert sorted(fd_targets(m.container_pid)) == [0, 1, 2]


@pytest.mark.parametrize("standby", [False, True], ids=["spawned", "standby"])
def test_the_runtime_gets_no_descriptor_but_its_stdio(ctr, tmp_path, standby):
    # The sync socket reaches the monitor without close-on-exec; passed on to `runc create`,
    # it would live on in runc's init until the container starts.
    record = tmp_path / "runtime-fds"
    wrapper = tmp_path / "runtime"
    wrapper.write_text('#!/bin/sh\n'
                       'case "$*" in *" create "*)\n'
                       '  (ls -l /proc/$$/fd) > %s ;;\n'
                       'esac\n'
                       'exec %s "$@"\n' % (record, H.RUNC))
    wrapper.chmod(0o755)
    m = ctr(["sleep", "1000"], spawn=False, runtime=str(wrapper))
    assert m.spawn(standby=standby), m.error
    fds = dict(line.split()[-3::2] for line in record.read_text().splitlines() if " -> " in line)
    # The shell's own descriptors (the script it reads) are all it may add.
    stray = {fd: t for fd, t in fds.items() if int(fd) > 2 and t != str(wrapper)}
    assert stray == {}, fds
    m.start()


def memory_cgroup_usable():
    return os.path.exists("/sys/fs/cgroup/memory/memory.oom_control") or \
        os.path.exists("/sys/fs/cgroup/cgroup.controllers")


@pytest.mark.skipif(not memory_cgroup_usable(), reason="no memory cgroup controller")
def test_oom_kill_is_recorded(ctr):
    cg = "/crisp-conmon-test-%s" % uuid.uuid4().hex[:8]
    m = ctr(["sh", "-c", "echo go; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo no"],
            memory_limit=32 << 20, cgroups_path=cg)
    m.start()
    m.wait_exit(60)
    ex = m.exit_file()
    assert ex["status"] == "137" and ex["oom_killed"] == "1", ex
    assert H.read_kv(os.path.join(m.state, "oom"))["version"] == str(H.VERSION)


@pytest.mark.skipif(not memory_cgroup_usable(), reason="no memory cgroup controller")
def test_oom_event_while_container_lives(ctr):
    # The killer takes the big subshell, not the init: the event, not the exit, must tell.
    # The subshell and its pipe volunteer (oom_score_adj 1000): while a killed one is still
    # being torn down the kernel may pick again, and must not pick the init then (seen 1 run
    # in 20 when all had the same score).
    cg = "/crisp-conmon-test-%s" % uuid.uuid4().hex[:8]
    m = ctr(["sh", "-c", "(echo 1000 >/proc/self/oom_score_adj;"
             " x=$(head -c 200000000 /dev/zero | tr '\\0' a)); echo survived; sleep 1000"],
            memory_limit=32 << 20, cgroups_path=cg)
    m.start()
    assert H.wait_for(lambda: os.path.exists(os.path.join(m.state, "oom")), 60)
    # The subshell was killed; on a loaded machine its parent may take a while to go on.
    assert H.wait_for(lambda: b"survived" in m.read_log(), 30)
    assert m.alive() and not os.path.exists(os.path.join(m.state, "exit"))
    os.kill(m.container_pid, signal.SIGKILL)
    m.wait_exit()
    assert m.exit_file()["oom_killed"] == "1"


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])


def test_flood_with_a_stalled_attach_client(ctr):
    # 64 MiB of output while an attach client never reads: the container must not block and
    # the monitor's peak memory must stay where an idle one is.
    m = ctr(["sh", "-c", "sleep 0.5; yes 0123456789abcdef | head -c 67108864; echo; echo end"])
    stalled = m.connect("attach")
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    m.start()
    m.wait_exit(120)
    assert m.exit_file()["status"] == "0"
    assert os.path.getsize(m.log_path) > 64 << 20
    with open(m.log_path, "rb") as f:
        f.seek(-200, os.SEEK_END)
        assert f.read().endswith(b" stdout F end\n")
    stalled.close()


def needed_libraries():
    out = subprocess.run(["readelf", "-d", H.conmon_path()], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def test_flood_memory_stays_flat(ctr):
    if any(n.startswith("libtsan") for n in needed_libraries()):
        pytest.skip("ThreadSanitizer build: its shadow memory grows with every page touched")
    m = ctr(["sh", "-c", "yes 0123456789abcdef | head -c 33554432; sleep 1000"])
    before = vm_hwm_kib(m.pid)
    m.start()
    assert H.wait_for(lambda: os.path.getsize(m.log_path) > 32 << 20, 60)
    assert vm_hwm_kib(m.pid) - before < 512, (before, vm_hwm_kib(m.pid))


def test_binary_needs_only_libc():
    needed = needed_libraries()
    if any(n.startswith(("libasan", "libubsan", "libtsan")) for n in needed):
        pytest.skip("sanitizer build: the runtime libraries are expected")
    assert set(needed) <= {"libc.so.6"}, needed


def client_tool(*args):
    tool = os.path.join(H.builddir(), "test", "monitor-client-tool")
    out = subprocess.run([tool] + [str(a) for a in args], capture_output=True, check=True,
                         timeout=60).stdout
    return out


def kv(out):
    return dict(line.split("=", 1) for line in out.decode(errors="replace").splitlines()
                if "=" in line)


@pytest.fixture
def tool_ctr(ctr):
    """A bundle and a Monitor record, not spawned: the client library spawns it."""
    def make(args, *extra_tool_args):
        m = ctr(args, spawn=False)
        out = kv(client_tool("spawn", H.conmon_path(), m.cid, m.bundle, m.state, H.RUNC,
                             m.root, m.log_path, *extra_tool_args))
        if "hello" in out:
            m.pid = int(out["hello"])
        return m, out
    return make


def test_client_library(tool_ctr):
    m, out = tool_ctr(["sleep", "1000"])
    assert out["rc"] == "0" and out["monitor"] == out["hello"] and out["version"] == str(H.VERSION)
    m.container_pid = int(out["container"])
    assert m.alive()
    m.start()
    assert kv(client_tool("version", m.state)) == {"rc": "0", "version": str(H.VERSION)}
    assert kv(client_tool("reopen", m.state))["rc"] == "0"
    assert kv(client_tool("resize", m.state, 10, 20))["rc"] == "-25"  # ENOTTY: no terminal
    res = client_tool("exec", m.state, 0, 0, "sh", "-c", "echo $A; echo e >&2; exit 4", "--",
                      "A=b")
    head, _, body = res.partition(b"err=2\n")
    assert kv(head) == {"rc": "0", "exit": "4", "timed_out": "0", "truncated": "0",
                        "out": "2"} and body == b"b\ne\n"
    res = kv(client_tool("exec", m.state, 300, 10, "sh", "-c", "echo 0123456789abc; sleep 50"))
    assert (res["timed_out"], res["truncated"], res["out"]) == ("1", "1", "10")
    os.kill(m.container_pid, signal.SIGKILL)
    m.wait_exit()
    assert kv(client_tool("version", m.state))["rc"] in ("-2", "-111")  # socket gone


def test_client_library_runtime_error(tool_ctr):
    m, out = tool_ctr(["/nonexistent"])
    assert out["rc"] == "-5" and "nonexistent" in out["error"], out
    m.wait_exit()


def test_client_library_abort_before_go(tool_ctr):
    m, out = tool_ctr(["sleep", "1000"], "--fail-before-go")
    assert out["rc"] == "-125"
    m.wait_exit()
    assert runc_state(m).returncode != 0
