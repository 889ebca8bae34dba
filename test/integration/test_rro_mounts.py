"""Recursive read-only binds (CRI Mount.recursive_read_only): the host directory and every
mount below it read-only in the container, where a plain read-only bind leaves the submounts
as they are. crisp clones the tree and makes it read-only with mount_setattr itself, so it
works whatever the OCI runtime knows; the CRI's rules (readonly set, propagation private) are
enforced; the staged tree is gone once the container is, also after a crisp restart."""
import os
import subprocess

import grpc
import pytest

from container_harness import (SLEEPER, cenv, rpc_error)  # noqa: F401
from cri_client import pb
from test_crash_points import paused  # noqa: F401
from test_image_volumes import sh, staged


@pytest.fixture
def host_tree(tmp_path):
    """tmp/tree with a file at the top and a tmpfs mounted at tree/sub (unmounted after)."""
    tree = tmp_path / "tree"
    sub = tree / "sub"
    sub.mkdir(parents=True)
    (tree / "top.txt").write_text("top\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "crisp-rro-test", str(sub)],
                   check=True)
    try:
        (sub / "in-tmpfs.txt").write_text("sub\n")
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=True)


def bind(path, host, **kw):
    return pb.Mount(container_path=path, host_path=str(host), **kw)


def test_recursive_read_only_reaches_submounts(cenv, host_tree):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "c", command=SLEEPER, mounts=[
        bind("/rro", host_tree, readonly=True, recursive_read_only=True),
        bind("/ro", host_tree, readonly=True),
        bind("/file", host_tree / "top.txt", readonly=True, recursive_read_only=True)])
    assert sh(cenv, cid, "cat /rro/top.txt /rro/sub/in-tmpfs.txt /file") == \
        (0, "top\nsub\ntop\n")
    for target in ("/rro/new", "/rro/sub/new", "/ro/new", "/file"):
        rc, out = sh(cenv, cid, "echo x > %s" % target)
        assert rc != 0 and "Read-only file system" in out, (target, out)
    # The difference: a plain read-only bind leaves the submount writable.
    assert sh(cenv, cid, "echo x > /ro/sub/written") == (0, "")
    assert sorted(os.listdir(host_tree / "sub")) == ["in-tmpfs.txt", "written"]
    st = cenv.status(cid).status
    assert [(m.container_path, m.recursive_read_only) for m in st.mounts] == \
        [("/rro", True), ("/ro", False), ("/file", True)]
    assert len(staged(cenv)) == 3  # the tree, its tmpfs, and the file
    cenv.remove(cid)
    assert not staged(cenv), staged(cenv)


@pytest.mark.parametrize("kw, needle", [
    ({"readonly": False}, "recursive_read_only needs readonly"),
    ({"readonly": True, "propagation": pb.PROPAGATION_HOST_TO_CONTAINER},
     "needs propagation PROPAGATION_PRIVATE, not PROPAGATION_HOST_TO_CONTAINER"),
    ({"readonly": True, "propagation": pb.PROPAGATION_BIDIRECTIONAL},
     "not PROPAGATION_BIDIRECTIONAL"),
])
def test_invalid_combinations_are_refused(cenv, host_tree, kw, needle):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "c", command=SLEEPER,
                    mounts=[bind("/rro", host_tree, recursive_read_only=True, **kw)])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mount '/rro'" in err.details() and needle in err.details(), err.details()
    assert not cenv.list() and not staged(cenv)


def test_missing_host_path_is_refused(cenv, tmp_path):
    pod = cenv.run_pod()
    missing = tmp_path / "missing"
    err = rpc_error(cenv.create, pod, "c", command=SLEEPER,
                    mounts=[bind("/rro", missing, readonly=True, recursive_read_only=True)])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(missing) in err.details()
    assert not cenv.list() and not staged(cenv)


def test_recursive_read_only_survives_a_restart(cenv, host_tree):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "c", command=SLEEPER, mounts=[
        bind("/rro", host_tree, readonly=True, recursive_read_only=True)])
    cenv.d.kill9()
    cenv.d.start()
    rc, out = sh(cenv, cid, "echo x > /rro/sub/new")
    assert rc != 0 and "Read-only file system" in out
    assert cenv.status(cid).status.mounts[0].recursive_read_only
    cenv.remove(cid)
    assert not staged(cenv)
    assert os.listdir(host_tree / "sub") == ["in-tmpfs.txt"]


def test_kill_in_create_leaves_no_staged_tree(paused, host_tree):
    env = paused.env
    pod = paused.run_pod()
    cfg = env.config("c", command=SLEEPER, mounts=[
        bind("/rro", host_tree, readonly=True, recursive_read_only=True)])
    req = pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg,
                                    sandbox_config=env.pods[pod])
    paused.kill_during("before-create", "CreateContainer", req)
    assert not env.list()
    assert not staged(env), staged(env)

