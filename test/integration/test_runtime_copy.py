"""The sealed copy of runc that monitors run (pkg/container/container-runtime-copy.c).

runc 1.1 makes sure that each `runc init` runs from a file no container can write: it
bind-mounts itself read-only on the host (or copies itself into a memfd) and executes itself
again, unless it already runs from a memfd sealed against writes, which it counts as its own
copy.  crisp makes that copy once and the monitors run runc from it.  These tests look at what
the container's init runs from while it waits to be started: the very memfd the monitor holds
(so runc made no copy of its own), sealed, and byte for byte the runtime's file.
"""
import contextlib
import fcntl
import hashlib
import os
import shutil

import pytest

from container_harness import (SLEEPER, finish_env, make_env, monitors,  # noqa: F401
                               push_extra_images, cenv)

RUNC = shutil.which("runc") or "/usr/sbin/runc"
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def monitor_copies(pid):
    """{inode: /proc path} of the memfds the monitor holds open."""
    found = {}
    fds = "/proc/%d/fd" % pid
    for n in os.listdir(fds):
        p = os.path.join(fds, n)
        try:
            if os.readlink(p).startswith("/memfd:"):
                found[os.stat(p).st_ino] = p
        except FileNotFoundError:
            pass
    return found


@contextlib.contextmanager
def runc_at(crisp_factory, registry, tmp_path, path):
    """A ContainerEnv whose runc handler runs the runtime at path; nothing may leak."""
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir,
                   config="[runtime.runc]\npath = %s\n" % path)
    try:
        yield env
    finally:
        leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks


def init_exe(env, cid):
    """The file the created container's init runs from (runc's own, until the start)."""
    return "/proc/%d/exe" % env.pid(cid)


def assert_sealed_copy_of(exe, original):
    fd = os.open(exe, os.O_RDONLY)
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) == SEALS
    finally:
        os.close(fd)
    assert digest(exe) == digest(original)
    # No one, root included, may change it: not in place, and not by making it shorter.
    with pytest.raises(OSError):
        fd = os.open(exe, os.O_WRONLY)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
    with pytest.raises(OSError):
        os.truncate(exe, 0)


def test_a_created_init_runs_from_the_monitors_sealed_copy(cenv):
    pod = cenv.run_pod()
    cid = cenv.create(pod, "copy", command=SLEEPER)
    exe = init_exe(cenv, cid)
    assert os.readlink(exe) == "/memfd:runc (deleted)"
    [mon] = monitors(cid)
    # The same memfd as the monitor's: runc took it as its copy and made none of its own.
    assert os.stat(exe).st_ino in monitor_copies(mon)
    assert_sealed_copy_of(exe, RUNC)
    cenv.start(cid)
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    # Every container shares the one copy.
    other = cenv.create(pod, "copy2", command=SLEEPER)
    assert os.stat(init_exe(cenv, other)).st_ino in monitor_copies(mon)


def test_a_runtime_replaced_on_disk_gets_a_new_copy(crisp_factory, registry, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    path = str(bindir / "runc")
    shutil.copy2(RUNC, path)
    with runc_at(crisp_factory, registry, tmp_path, path) as env:
        pod = env.run_pod()
        first = env.create(pod, "first", command=SLEEPER)
        old = os.stat(init_exe(env, first)).st_ino
        # As a package upgrade does: a new file renamed over the old one.  Its last byte
        # differs (ELF files end in section headers, which execution never reads).
        with open(RUNC, "rb") as f:
            data = bytearray(f.read())
        data[-1] ^= 0xFF
        new_path = str(bindir / "runc.new")
        with open(new_path, "wb") as f:
            f.write(data)
        os.chmod(new_path, 0o755)
        os.rename(new_path, path)
        second = env.create(pod, "second", command=SLEEPER)
        exe = init_exe(env, second)
        assert os.stat(exe).st_ino != old
        assert_sealed_copy_of(exe, path)
        # The first container keeps the runc it was created with, for its start and delete.
        [mon] = monitors(first)
        assert old in monitor_copies(mon)
        for cid in (first, second):
            env.start(cid)
            assert env.exec_sync(cid, ["true"]).exit_code == 0
            env.stop(cid, 0)


def test_a_runc_that_is_a_script_is_run_from_its_path(crisp_factory, registry, tmp_path):
    """A wrapper named runc is no ELF file: a copy of it could not be run, so there is none."""
    bindir = tmp_path / "wrap"
    bindir.mkdir()
    path = bindir / "runc"
    path.write_text("#!/bin/sh\nexec %s \"$@\"\n" % RUNC)
    path.chmod(0o755)
    with runc_at(crisp_factory, registry, tmp_path, path) as env:
        pod = env.run_pod()
        cid = env.create(pod, "wrapped", command=SLEEPER)
        [mon] = monitors(cid)
        assert not monitor_copies(mon)
        env.start(cid)
        assert env.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
