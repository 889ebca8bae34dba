"""Upgrades keep what runs: crisp built from an earlier commit of this repository runs a CNI
pod and its containers, is stopped, and the current build starts on the same state.  Every pod
and container is still there and managed by the new crisp (status, exec-sync and log reopening
through the old monitor, start, stop, remove), the log of a running container has no gap across the switch, an
exit code is kept, and nothing leaks.  A state written by a newer crisp is refused at start-up
with a message naming the file and both versions, and left untouched.

The earlier build is made once in a git worktree of OLD_COMMIT and its binaries are kept in
<builddir>/upgrade-cache/<commit>/, so later runs start at once."""
import fcntl
import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from container_harness import (ContainerEnv, finish_env, log_lines, monitors,  # noqa: F401
                               parse_log, push_extra_images, read_cmdline, ts_ns, wait_for)
from cri_client import pb
from crisp_daemon import BUILDDIR, CONMON, CRISP, CrispDaemon
from leakcheck import links, mounts_under
from image_harness import registries_conf
from pod_harness import PLUGIN_DIRS, PodNet, nsfs_mounts_under, pod_config, run_pod

# main of this repository when the crash-safety issue (state versioning, upgrade test) began.
OLD_COMMIT = "eb26f80faa36f968fb0bc0cccc44a42e0ba3dbcc"
SRCDIR = os.environ.get("CRISP_SRCDIR",
                        os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BINARIES = ("crisp", "crisp-conmon", "crisp-pause")
STATE_VERSION = 1

COUNTER = ["sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); usleep 100000; done"]


def git(*args, **kw):
    return subprocess.run(["git", "-C", SRCDIR, *args], capture_output=True, text=True, **kw)


def _build_in_worktree(full, cache, log_path):
    """Builds FULL in a temporary worktree and installs its binaries in CACHE (atomically)."""
    src = tempfile.mkdtemp(prefix="crisp-upgrade-src-")
    os.rmdir(src)
    r = git("worktree", "add", "--detach", src, full)
    assert r.returncode == 0, "git worktree add: %s" % r.stderr
    try:
        with open(log_path, "w") as log:
            for cmd in (["./autogen.sh"], ["./configure"], ["make", "-j2"]):
                r = subprocess.run(cmd, cwd=src, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, NOCONFIGURE="1"))
                assert r.returncode == 0, "building %s: %s failed, see %s" % (
                    full[:12], cmd[0], log_path)
        staging = cache + ".new"
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        for name in BINARIES:
            shutil.copy2(os.path.join(src, name), staging)
        shutil.rmtree(cache, ignore_errors=True)
        os.rename(staging, cache)
    finally:
        git("worktree", "remove", "--force", src)


@pytest.fixture(scope="module")
def old_bin():
    """The directory holding crisp, crisp-conmon and crisp-pause of OLD_COMMIT."""
    full = git("rev-parse", "--verify", "-q", OLD_COMMIT + "^{commit}").stdout.strip()
    if not full:
        shallow = git("rev-parse", "--is-shallow-repository").stdout.strip()
        pytest.skip("commit %s is not in %s (%s)" % (
            OLD_COMMIT[:12], SRCDIR,
            "a shallow clone" if shallow == "true" else "no such history"))
    cache = os.path.join(os.environ.get("CRISP_UPGRADE_CACHE")
                         or os.path.join(BUILDDIR, "upgrade-cache"), full)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    with open(cache + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building it
        if not all(os.access(os.path.join(cache, b), os.X_OK) for b in BINARIES):
            _build_in_worktree(full, cache, cache + ".build.log")
    return cache


class SwitchableDaemon(CrispDaemon):
    """A CrispDaemon whose crisp and crisp-conmon come from BINDIR, switchable between starts
    (state directories, socket and configuration stay)."""

    def __init__(self, tmpdir, bindir, config=""):
        self.bindir = bindir
        super().__init__(tmpdir, config)

    def base_config(self):
        return super().base_config().replace(
            "conmon = %s\n" % CONMON, "conmon = %s\n" % self.conmon)

    @property
    def conmon(self):
        return os.path.join(self.bindir, "crisp-conmon")

    def command(self, *extra):
        return [os.path.join(self.bindir, "crisp")] + super().command(*extra)[1:]

    def switch_to(self, bindir):
        assert self.proc is None, "stop crisp before switching its binaries"
        with open(self.conf_file) as f:
            text = f.read()
        old = self.conmon
        self.bindir = bindir
        with open(self.conf_file, "w") as f:
            f.write(text.replace("conmon = %s\n" % old, "conmon = %s\n" % self.conmon))


@pytest.fixture
def upenv(old_bin, registry, tmp_path):
    """A ContainerEnv on the OLD_COMMIT daemon with a CNI network; afterwards nothing may be
    left behind (monitors, mounts, cgroups, namespace pins, links, IP allocations)."""
    if not PLUGIN_DIRS:
        pytest.skip("no CNI plugins installed")
    links_before = links()
    d = SwitchableDaemon(str(tmp_path / "crisp"), old_bin)
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(registry.host))
    with open(os.path.join(d.conf_dir, "50-cni.conf"), "w") as f:
        f.write("[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS))
    net = PodNet(d.tmp)
    net.install(d.cni_dir)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    d.start()
    env = None
    try:
        env = ContainerEnv(d, registry, push_extra_images(registry), logdir)
        env.net = net
        yield env
    finally:
        leaks = finish_env(env) if env is not None else []
        d.stop()
        leaks += ["nsfs pin %s" % m for m in nsfs_mounts_under(d.tmp)]
        leaks += ["IP allocation %s" % a for a in net.allocations()]
        subprocess.run(["ip", "link", "del", net.bridge], stderr=subprocess.DEVNULL)
        leaks += ["link %s" % link for link in links() - links_before]
        mounts = [mp for mp, _ in mounts_under(d.tmp)]
        leaks += ["mount %s" % m for m in mounts]
        for m in mounts:
            subprocess.run(["umount", "-l", m], check=False)
        shutil.rmtree(d.tmp, ignore_errors=True)
        assert not leaks, "leaked: %s" % leaks


def run_cni_pod(env, name):
    cfg = env.pod_config(name)
    cfg.linux.security_context.namespace_options.network = pb.POD
    os.makedirs(cfg.log_directory, exist_ok=True)
    pod_id = run_pod(env.c, cfg)
    env.pods[pod_id] = cfg
    return pod_id


def pod_status(env, pod_id):
    return env.c.call("PodSandboxStatus",
                      pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status


def counter_values(path):
    return [int(x) for x in log_lines(path, "stdout")]


def version_file(directory):
    try:
        with open(os.path.join(directory, "version")) as f:
            return f.read()
    except FileNotFoundError:
        return None


def test_upgrade_keeps_pods_and_containers(upenv, old_bin):
    env, d = upenv, upenv.d
    pod = run_cni_pod(env, "up")
    ip = pod_status(env, pod).network.ip
    assert ip, "the CNI pod has no IP"
    counter = env.run(pod, "counter", command=COUNTER)
    sleeper = env.run(pod, "sleeper", command=["sleep", "3600"])
    done = env.run(pod, "done", command=["sh", "-c", "exit 42"])
    created = env.create(pod, "created", command=["sleep", "3600"])
    env.wait_exit(done)
    ids = (counter, sleeper, done, created)
    before = {cid: env.status(cid).status for cid in ids}
    pids = {cid: env.pid(cid) for cid in (counter, sleeper)}
    log = before[counter].log_path
    wait_for(lambda: len(counter_values(log)) >= 5, 10, what="counter output")
    assert before[done].exit_code == 42
    # The old build wrote no version file: this is the unversioned state upgrading.
    assert version_file(d.root) is None and version_file(d.run_root) is None

    assert d.stop() == 0
    n_down = len(counter_values(log))
    time.sleep(0.5)
    d.switch_to(os.path.dirname(CRISP))
    d.start()

    assert version_file(d.root) == "%d\n" % STATE_VERSION
    assert version_file(d.run_root) == "%d\n" % STATE_VERSION
    with open(d.log_path, errors="replace") as f:
        bad = [line for line in f if "CRITICAL" in line or "assertion" in line]
    assert not bad, "GLib assertion failures: %s" % bad
    assert not glob.glob(os.path.join(d.root, "*", ".quarantine", "*")), "records quarantined"
    pods = env.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [(p.id, p.state) for p in pods] == [(pod, pb.SANDBOX_READY)]
    assert pod_status(env, pod).network.ip == ip
    assert sorted(c.id for c in env.list()) == sorted(ids)
    for cid in ids:
        st = env.status(cid).status
        want = before[cid]
        assert (st.state, st.exit_code, st.created_at, st.started_at, st.finished_at,
                st.log_path) == (want.state, want.exit_code, want.created_at, want.started_at,
                                 want.finished_at, want.log_path), cid
    assert env.status(done).status.exit_code == 42
    for cid in (counter, sleeper):
        assert env.pid(cid) == pids[cid]
        mons = monitors(cid)
        assert len(mons) == 1
        # The new crisp really talks to a monitor of the old build.
        assert read_cmdline(mons[0])[0] == os.path.join(old_bin, "crisp-conmon")
    assert len(counter_values(log)) > n_down, "the log stopped while crisp was switched"

    r = env.exec_sync(sleeper, ["sh", "-c", "echo upgraded; exit 3"])
    assert (r.stdout, r.exit_code) == (b"upgraded\n", 3)
    r = env.exec_sync(counter, ["cat", "/proc/self/net/dev"])
    assert r.exit_code == 0 and b"eth0" in r.stdout, "not in the CNI pod's network"

    # A container created by the old crisp starts under the new one; a new one works too.
    env.start(created)
    assert env.state(created) == pb.CONTAINER_RUNNING
    fresh = env.run(pod, "fresh", command=["sh", "-c", "echo new; exit 7"])
    st = env.wait_exit(fresh)
    assert st.exit_code == 7 and log_lines(st.log_path) == ["new"]

    # Log rotation goes through the old monitor too.
    time.sleep(0.5)
    os.rename(log, log + ".1")
    env.c.call("ReopenContainerLog", pb.ReopenContainerLogRequest(container_id=counter))
    wait_for(lambda: os.path.exists(log) and len(counter_values(log)) >= 3, 5,
             what="the reopened log")
    env.stop(counter, timeout=0)
    values = counter_values(log + ".1") + counter_values(log)
    assert values == list(range(len(values))), "gap or duplicate across the upgrade"
    stamps = [ts_ns(rec[0]) for rec in parse_log(log + ".1") + parse_log(log)]
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) < 10**9, "the log paused %.2f s" % (max(gaps) / 1e9)
    assert env.status(counter).status.exit_code == 137

    env.stop(sleeper, timeout=0)
    env.stop(created, timeout=0)
    for cid in ids + (fresh,):
        env.remove(cid)
    assert not env.list()
    env.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    env.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)
    assert not env.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items


def snapshot(directory):
    """{relative path: bytes} of every file under DIRECTORY."""
    found = {}
    for base, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(base, name)
            try:
                with open(path, "rb") as f:
                    found[os.path.relpath(path, directory)] = f.read()
            except OSError:  # namespace pins
                found[os.path.relpath(path, directory)] = None
    return found


@pytest.mark.parametrize("where", ["root", "run_root"])
def test_state_of_a_newer_crisp_is_refused(crisp, where):
    pod = run_pod(crisp.client, pod_config("future", host_network=True))
    assert crisp.stop() == 0
    directory = getattr(crisp, where)
    assert version_file(directory) == "%d\n" % STATE_VERSION
    with open(os.path.join(directory, "version"), "w") as f:
        f.write("%d\n" % (STATE_VERSION + 1))
    state = snapshot(crisp.root), snapshot(crisp.run_root)
    path = os.path.join(directory, "version")
    try:
        with pytest.raises(RuntimeError) as failed:
            crisp.start(timeout=10)
        message = str(failed.value)
        assert "crisp exited with 1" in message
        assert "crisp: '%s' says the state is format version %d, but this crisp knows only " \
               "versions up to %d" % (path, STATE_VERSION + 1, STATE_VERSION) in message, message
        assert (snapshot(crisp.root), snapshot(crisp.run_root)) == state, "the state was changed"
    finally:
        # Back at a version it knows, the same state is read as it was (and cleaned up).
        with open(path, "w") as f:
            f.write("%d\n" % STATE_VERSION)
        crisp.start()
    pods = crisp.client.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [(p.id, p.state) for p in pods] == [(pod, pb.SANDBOX_READY)]


def test_unreadable_version_file_is_refused(crisp):
    crisp.stop()
    with open(os.path.join(crisp.root, "version"), "w") as f:
        f.write("one\n")
    try:
        with pytest.raises(RuntimeError) as failed:
            crisp.start(timeout=10)
        assert "does not hold a version number" in str(failed.value)
    finally:
        with open(os.path.join(crisp.root, "version"), "w") as f:
            f.write("%d\n" % STATE_VERSION)
        crisp.start()
