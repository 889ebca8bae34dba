"""Disk faults: crisp's state directory on a small tmpfs that fills up, or that turns
read-only under it.  Every call that needs to write fails with a status naming the problem,
nothing half-made is left (no pod listed, no namespace pin, no container), crisp keeps
serving what it can (reads, Version, what already runs), and once space is back the same
calls succeed."""
import os
import subprocess

import grpc
import pytest

from container_harness import SLEEPER, ContainerEnv, finish_env, push_extra_images
from cri_client import pb
from image_harness import registries_conf
from pod_harness import nsfs_mounts_under


def fill(path):
    """Fills the filesystem holding path; returns the filler file."""
    filler = os.path.join(path, "filler")
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k"], stderr=subprocess.DEVNULL,
                   check=False)
    # Whatever the last block could not take.
    fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
    try:
        while os.write(fd, b"x" * 512) > 0:
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_root(crisp_factory, registry, tmp_path):
    """A container env whose state root is a 64 MiB tmpfs of its own."""
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        d = crisp_factory(start=False)
        with open(os.path.join(d.conf_dir, "50-small-root.conf"), "w") as f:
            f.write("[crisp]\nroot = %s/root\n" % mnt)
        with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
            f.write(registries_conf(registry.host))
        d.root = "%s/root" % mnt
        d.start()
        env = ContainerEnv(d, registry, push_extra_images(registry), logdir)
        env.small = str(mnt)
        yield env
        for f in ("filler",):
            p = os.path.join(str(mnt), f)
            if os.path.exists(p):
                os.unlink(p)
        leaks = finish_env(env)
        assert not leaks, "leaked: %s" % leaks
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def error_of(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e
    raise AssertionError("the call succeeded on a full disk")


def test_full_state_disk(small_root):
    env = small_root
    running_pod = env.run_pod("before")
    running = env.run(running_pod, "r", command=SLEEPER)
    pins = nsfs_mounts_under(env.d.tmp)
    filler = fill(env.small)

    e = error_of(env.run_pod, "full")
    assert e.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL), e
    assert "space" in e.details().lower(), e.details()
    e = error_of(env.create, running_pod, "c2", command=SLEEPER)
    assert "space" in e.details().lower(), e.details()
    # Nothing half-made: only what existed before is listed, no extra pins.
    pods = env.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items
    assert [p.id for p in pods] == [running_pod]
    assert [c.id for c in env.list()] == [running]
    assert nsfs_mounts_under(env.d.tmp) == pins
    # Still serving what it can.
    assert env.c.call("Version").runtime_name == "crisp"
    assert env.state(running) == pb.CONTAINER_RUNNING
    r = env.exec_sync(running, ["sh", "-c", "echo still"])
    assert r.stdout == b"still\n"

    os.unlink(filler)
    pod = env.run_pod("after")
    cid = env.run(pod, "c3", command=SLEEPER)
    assert env.state(cid) == pb.CONTAINER_RUNNING
    assert env.d.proc.poll() is None


def test_read_only_state_disk(crisp_factory, tmp_path):
    """A state directory crisp cannot write to is refused at start-up, naming it; crisp does
    not start half-working. (A filesystem that turns read-only under a running crisp cannot
    be made here: remounting needs no file open for writing, and crisp keeps some open.)"""
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(ro)],
                   check=True)
    try:
        os.makedirs(ro / "root")
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        d = crisp_factory(start=False)
        with open(os.path.join(d.conf_dir, "50-ro-root.conf"), "w") as f:
            f.write("[crisp]\nroot = %s/root\n" % ro)
        r = subprocess.run(d.command(), capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert "read-only" in r.stderr.lower() and str(ro) in r.stderr, r.stderr
        assert not os.path.exists(d.sock)
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False)
