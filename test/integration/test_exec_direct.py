"""ExecSync's direct path (the monitor enters the container itself) against `runc exec` on the
same container: the monitor takes the runtime's exec when the container's exec-spec is not
there, so each case runs one probe both ways and the two must see exactly the same process:
ids, groups, the five capability sets, no_new_privs, seccomp mode and filter count, cgroups,
namespaces, rlimits, working directory, environment and oom_score_adj."""
import glob
import os
import subprocess
import time

import grpc
import pytest

import conmon_harness
from container_harness import SLEEPER, cenv, pids_with_argv, rpc_error, wait_for  # noqa: F401
from cri_client import pb


def monitor_links_tsan():
    out = subprocess.run(["readelf", "-d", conmon_harness.conmon_path()], capture_output=True,
                         text=True, check=True).stdout
    return "libtsan" in out


# Under ThreadSanitizer the monitor's child keeps a second thread, setns into a mount
# namespace is refused to it, and the monitor sends every exec through runc: there is no
# direct path to compare.
pytestmark = pytest.mark.skipif(monitor_links_tsan(),
                                reason="ThreadSanitizer build: every exec goes through runc")

FIELDS = ["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
          "NoNewPrivs", "Seccomp", "Seccomp_filters", "Umask"]
PROBE = ("for f in %s; do grep \"^$f:\" /proc/self/status; done; "
         "echo cgroup; cat /proc/self/cgroup; "
         "for n in /proc/self/ns/*; do echo \"$n $(readlink $n)\"; done; "
         "cat /proc/self/limits; echo \"cwd $(pwd)\"; env | sort; "
         "echo \"oom $(cat /proc/self/oom_score_adj)\"; echo \"pid1 $(cat /proc/1/cmdline)\""
         % " ".join(FIELDS))


def exec_spec(cenv, cid):
    found = glob.glob(os.path.join(cenv.d.run_root, "**", cid, "monitor", "exec-spec"),
                      recursive=True)
    return found[0] if found else None


def probe(cenv, cid):
    r = cenv.exec_sync(cid, ["sh", "-c", PROBE])
    assert r.exit_code == 0, r.stderr
    return r.stdout.decode().splitlines()


def both_ways(cenv, cid):
    """The probe's output through the direct path, then through `runc exec`."""
    spec = exec_spec(cenv, cid)
    assert spec, "crisp wrote no exec-spec: the direct path is not in use"
    direct = probe(cenv, cid)
    os.rename(spec, spec + ".off")
    try:
        runc = probe(cenv, cid)
    finally:
        os.rename(spec + ".off", spec)
    return direct, runc


def compare(cenv, pod, name, **kw):
    cid = cenv.run(pod, name, command=SLEEPER, **kw)
    direct, runc = both_ways(cenv, cid)
    assert direct == runc
    status = dict(l.split(":", 1) for l in direct if l.split(":", 1)[0] in FIELDS)
    assert set(status) == set(FIELDS), direct
    return cid, {k: v.strip() for k, v in status.items()}, direct


def sec(**kw):
    caps = kw.pop("caps", None)
    s = pb.LinuxContainerSecurityContext(**kw)
    if caps is not None:
        s.capabilities.CopyFrom(caps)
    return s


def test_default_container_matches_runc_exec(cenv):
    pod = cenv.run_pod()
    cid, st, out = compare(cenv, pod, "dflt", working_dir="/tmp", envs={"A": "1", "B": "x y"})
    assert st["Seccomp"] == "0"  # the CRI's default: unconfined
    assert "cwd /tmp" in out and "A=1" in out and "B=x y" in out
    assert "pid1 sleep3600" in out, "pid 1 of the exec is not the container's init"
    log = open(cenv.d.log_path).read()
    assert "execs run directly from its monitor" in log
    assert "exec in container '%s': direct, from its monitor" % cid in log
    assert "exec in container '%s': through the runtime" % cid in log  # the forced fallback


def test_run_as_user_and_groups_match_runc_exec(cenv):
    pod = cenv.run_pod()
    _, st, _ = compare(cenv, pod, "user", security=sec(
        run_as_user=pb.Int64Value(value=1002), run_as_group=pb.Int64Value(value=2000),
        supplemental_groups=[4000, 5000]))
    assert st["Uid"].split()[0] == "1002" and st["Gid"].split()[0] == "2000"
    assert set(st["Groups"].split()) >= {"4000", "5000"}
    assert int(st["CapEff"], 16) == 0


def test_added_and_dropped_caps_match_runc_exec(cenv):
    pod = cenv.run_pod()
    caps = pb.Capability(add_capabilities=["NET_ADMIN", "SYS_TIME"],
                         drop_capabilities=["CHOWN", "KILL"])
    _, st, _ = compare(cenv, pod, "caps", security=sec(caps=caps))
    eff = int(st["CapEff"], 16)
    assert eff & (1 << 12) and eff & (1 << 25) and not eff & 1 and not eff & (1 << 5)


def test_no_new_privs_matches_runc_exec(cenv):
    pod = cenv.run_pod()
    rd = pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    _, st, _ = compare(cenv, pod, "nnp", security=sec(no_new_privs=True, seccomp=rd))
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"


def test_privileged_matches_runc_exec(cenv):
    pod = cenv.run_pod(privileged=True)
    _, st, _ = compare(cenv, pod, "priv", security=sec(privileged=True))
    assert st["Seccomp"] == "0"


@pytest.mark.parametrize("kind,mode", [(pb.SecurityProfile.Unconfined, "0"),
                                       (pb.SecurityProfile.RuntimeDefault, "2")])
def test_seccomp_profiles_match_runc_exec(cenv, kind, mode):
    pod = cenv.run_pod()
    _, st, _ = compare(cenv, pod, "sc", security=sec(seccomp=pb.SecurityProfile(profile_type=kind)))
    assert st["Seccomp"] == mode and st["Seccomp_filters"] == ("1" if mode == "2" else "0")


def test_runtime_default_filter_denies_like_runc(cenv):
    """The precompiled filter answers a denied syscall as runc's does (unshare: EPERM)."""
    pod = cenv.run_pod()
    rd = pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    cid = cenv.run(pod, "deny", command=SLEEPER, security=sec(seccomp=rd))
    cmd = ["sh", "-c", "unshare -U true; echo rc=$?"]
    direct = cenv.exec_sync(cid, cmd)
    spec = exec_spec(cenv, cid)
    os.rename(spec, spec + ".off")
    try:
        runc = cenv.exec_sync(cid, cmd)
    finally:
        os.rename(spec + ".off", spec)
    assert direct.stdout == runc.stdout and b"rc=0" not in direct.stdout


def test_host_pid_pod_matches_runc_exec(cenv):
    pod = cenv.run_pod(pid=pb.NODE)
    _, _, out = compare(cenv, pod, "hostpid")
    assert "pid1 sleep3600" not in out


def test_exec_sees_the_container_not_the_host(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "iso", command=SLEEPER)
    assert exec_spec(cenv, cid)
    r = cenv.exec_sync(cid, ["sh", "-c", "ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline"])
    count, pid1 = r.stdout.decode().split("\n")[:2]
    assert pid1.split("\x00")[:2] == ["sleep", "3600"], pid1
    assert int(count) < 10, "the exec sees the host's processes"
    host = os.readlink("/proc/self/ns/mnt")
    assert cenv.exec_sync(cid, ["readlink", "/proc/self/ns/mnt"]).stdout.decode().strip() != host


def test_missing_command_fails_like_runc(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "nocmd", command=SLEEPER)
    direct = cenv.exec_sync(cid, ["no-such-command"])
    spec = exec_spec(cenv, cid)
    os.rename(spec, spec + ".off")
    try:
        runc = cenv.exec_sync(cid, ["no-such-command"])
    finally:
        os.rename(spec + ".off", spec)
    assert direct.exit_code == runc.exit_code != 0
    assert b"executable file not found" in direct.stderr


def test_direct_timeout_kills_the_process(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "to", command=SLEEPER)
    assert exec_spec(cenv, cid)
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError):
        cenv.exec_sync(cid, ["sleep", "37"], timeout=1)
    assert time.monotonic() - t0 < 6
    wait_for(lambda: not pids_with_argv(["sleep", "37"]), 5, what="the exec'd sleep to die")
    assert cenv.exec_sync(cid, ["true"]).exit_code == 0


def test_exec_after_the_init_exited_fails_cleanly(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "gone", command=["sleep", "1"])
    assert exec_spec(cenv, cid)
    cenv.wait_exit(cid)
    rpc_error(cenv.exec_sync, cid, ["true"])


def test_exec_direct_off_keeps_runc(crisp_factory, registry, tmp_path):
    """runtime.exec-direct = false: crisp writes no exec-spec, and execs still work."""
    from container_harness import finish_env, make_env, push_extra_images
    images = push_extra_images(registry)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, images, logdir,
                   config="[runtime]\nexec-direct = false\n")
    try:
        pod = env.run_pod()
        cid = env.run(pod, "off", command=SLEEPER)
        assert exec_spec(env, cid) is None
        assert env.exec_sync(cid, ["true"]).exit_code == 0
        log = open(env.d.log_path).read()
        assert "runtime.exec-direct is off" in log
        assert "exec in container '%s': through the runtime" % cid in log
    finally:
        assert not finish_env(env)


def seccomp_program(pid):
    """The BPF program of pid's (only) seccomp filter, read with PTRACE_SECCOMP_GET_FILTER."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    libc.ptrace.restype = ctypes.c_long
    PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SECCOMP_GET_FILTER = 16, 17, 0x420c
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) < 0:
        pytest.skip("ptrace attach: errno %d" % ctypes.get_errno())
    try:
        os.waitpid(pid, os.WNOHANG | 0x40000000)  # __WALL
        for _ in range(100):
            n = libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, None, None)
            if n >= 0 or ctypes.get_errno() != 3:  # ESRCH until the stop is seen
                break
            time.sleep(0.01)
        if n < 0:
            pytest.skip("PTRACE_SECCOMP_GET_FILTER: errno %d" % ctypes.get_errno())
        buf = ctypes.create_string_buffer(8 * n)
        assert libc.ptrace(PTRACE_SECCOMP_GET_FILTER, pid, None, buf) == n
        return buf.raw
    finally:
        libc.ptrace(PTRACE_DETACH, pid, None, None)


def filter_of_exec(cenv, cid, secs):
    import threading
    t = threading.Thread(target=lambda: cenv.exec_sync(cid, ["sleep", secs], timeout=30))
    t.start()
    try:
        wait_for(lambda: pids_with_argv(["sleep", secs]), 10, what="the exec'd sleep")
        pid = pids_with_argv(["sleep", secs])[0]
        return seccomp_program(pid)
    finally:
        for pid in pids_with_argv(["sleep", secs]):
            os.kill(pid, 9)
        t.join()


def test_precompiled_filter_is_runcs_without_its_stub(cenv):
    """The RuntimeDefault program the monitor loads is the one runc installs for the same
    container, less runc's leading ENOSYS stub (docs/containers.md)."""
    pod = cenv.run_pod()
    rd = pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    cid = cenv.run(pod, "bpf", command=SLEEPER, security=sec(seccomp=rd))
    direct = filter_of_exec(cenv, cid, "43")
    spec = exec_spec(cenv, cid)
    os.rename(spec, spec + ".off")
    try:
        runc = filter_of_exec(cenv, cid, "44")
    finally:
        os.rename(spec + ".off", spec)
    with open(os.path.join(os.path.dirname(spec), "exec-seccomp.bpf"), "rb") as f:
        assert f.read() == direct
    assert len(direct) > 8 * 50
    print("filter instructions: direct %d, runc %d" % (len(direct) // 8, len(runc) // 8))
    assert runc.endswith(direct) or direct == runc, (len(direct), len(runc))


def test_timeout_kills_a_command_that_left_the_process_group(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "pg", command=SLEEPER)
    assert exec_spec(cenv, cid)
    with pytest.raises(grpc.RpcError):
        cenv.exec_sync(cid, ["setsid", "sleep", "39"], timeout=1)
    wait_for(lambda: not pids_with_argv(["sleep", "39"]), 5, what="the exec'd sleep to die")
