"""Image volumes (CRI Mount.image, KEP 4639): an image's layers mounted read-only at a path in
a container, as containerd and CRI-O do. The image must have been pulled (the kubelet pulls
it); RemoveImage refuses an image a volume uses, as it refuses a container's own image; the
volume outlives a crisp restart and leaves no mount behind once the container is removed,
even when crisp was killed in the middle of the create."""
import os

import grpc
import pytest

from container_harness import (SLEEPER, cenv, rpc_error)  # noqa: F401
from cri_client import pb
from image_harness import build_and_push, pull, remove
from leakcheck import mounts_under
from registry_harness import import_builder
from test_crash_points import paused  # noqa: F401

_pushed = {}


def data_image(reg):
    """A data-only image of two layers (the second deletes a file of the first and adds
    one), pushed once per registry as vtest/data:latest."""
    if reg.host not in _pushed:
        b = import_builder()
        first = [b.dir_("data"), b.file_("data/hello.txt", b"hello from the image\n"),
                 b.file_("data/gone.txt", b"deleted by the next layer\n"),
                 b.symlink("inside", "/data"), b.symlink("escape", "../../../../../etc")]
        second = [b.dir_("data"), b.whiteout("data/gone.txt"),
                  b.file_("data/second.txt", b"second layer\n")]
        build_and_push(reg, "vtest/data", [first, second], config={})
        _pushed[reg.host] = "%s/vtest/data:latest" % reg.host
    return _pushed[reg.host]


def image_mount(path, image, **kw):
    return pb.Mount(container_path=path, image=pb.ImageSpec(image=image), **kw)


def sh(env, cid, script):
    r = env.exec_sync(cid, ["sh", "-c", script])
    return r.exit_code, (r.stdout + r.stderr).decode()


def staged(env):
    """What crisp staged for containers' volumes: mounts at <run-root>/containers/*/mounts/*."""
    base = os.path.join(env.d.run_root, "containers")
    return [m for m in mounts_under(base)
            if os.path.relpath(m[0], base).split("/")[1:2] == ["mounts"]]


def test_image_volume_shows_the_image_read_only(cenv):
    data = data_image(cenv.registry)
    data_ref = pull(cenv.d, data)
    pod = cenv.run_pod()
    # The kubelet names the image by the image_ref its pull returned; a name works too.
    cid = cenv.run(pod, "v", command=SLEEPER,
                   mounts=[image_mount("/vol", data_ref, readonly=True),
                           image_mount("/bb", cenv.busybox)])
    rc, out = sh(cenv, cid, "cat /vol/data/hello.txt /vol/data/second.txt; "
                            "test -e /vol/data/gone.txt && echo gone-is-there; ls /bb/bin/sh")
    assert (rc, out) == (0, "hello from the image\nsecond layer\n/bb/bin/sh\n")
    for target in ("/vol/new", "/vol/data/hello.txt", "/bb/new"):
        rc, out = sh(cenv, cid, "echo x > %s" % target)
        assert rc != 0 and "Read-only file system" in out, (target, out)
    rc, out = sh(cenv, cid, "grep -E ' /(vol|bb) ' /proc/self/mounts")
    assert rc == 0 and all(line.split()[3].startswith("ro") for line in out.splitlines()), out
    mounts = {m.container_path: m for m in cenv.status(cid).status.mounts}
    assert mounts["/vol"].image.image == data_ref and mounts["/vol"].host_path == ""
    assert mounts["/bb"].image.image == cenv.busybox

    # In use by a volume: refused like the image a container was created from.
    err = rpc_error(remove, cenv.d, data)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "in use" in err.details()
    assert staged(cenv)
    cenv.remove(cid)
    assert not staged(cenv), staged(cenv)
    remove(cenv.d, data)
    assert not cenv.c.call("ListImages", pb.ListImagesRequest(
        filter=pb.ImageFilter(image=pb.ImageSpec(image=data)))).images


def test_image_sub_path_stays_inside_the_image(cenv):
    data = data_image(cenv.registry)
    pull(cenv.d, data)
    pod = cenv.run_pod()
    # "inside" is a symbolic link to /data: resolved in the image, not on the host.
    cid = cenv.run(pod, "v", command=SLEEPER,
                   mounts=[image_mount("/vol", data, image_sub_path="data"),
                           image_mount("/link", data, image_sub_path="inside")])
    rc, out = sh(cenv, cid, "cat /vol/hello.txt /link/second.txt")
    assert (rc, out) == (0, "hello from the image\nsecond layer\n")
    # A link out of the image ends at the image's root: there is no /etc there.
    for sub in ("missing", "escape"):
        err = rpc_error(cenv.create, pod, "bad-" + sub, command=SLEEPER,
                        mounts=[image_mount("/vol", data, image_sub_path=sub)])
        assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
        assert "image_sub_path '%s'" % sub in err.details()
    assert [c.id for c in cenv.list()] == [cid]
    cenv.remove(cid)
    assert not staged(cenv)


def test_missing_image_is_not_found(cenv):
    pod = cenv.run_pod()
    missing = "%s/vtest/never-pulled:1" % cenv.registry.host
    err = rpc_error(cenv.create, pod, "v", command=SLEEPER,
                    mounts=[image_mount("/vol", missing)])
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "'/vol'" in err.details() and missing in err.details()
    assert not cenv.list() and not staged(cenv)


@pytest.mark.parametrize("kw, needle", [
    ({"host_path": "/tmp"}, "names both host_path '/tmp' and image"),
    ({"propagation": pb.PROPAGATION_BIDIRECTIONAL}, "PROPAGATION_BIDIRECTIONAL"),
    ({"image_sub_path": "../x"}, "image_sub_path '../x'"),
])
def test_image_mounts_that_make_no_sense_are_refused(cenv, kw, needle):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "v", command=SLEEPER,
                    mounts=[image_mount("/vol", cenv.busybox, **kw)])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in err.details(), \
        err.details()
    err = rpc_error(cenv.create, pod, "v", command=SLEEPER,
                    mounts=[pb.Mount(container_path="/vol", host_path="/tmp",
                                     image_sub_path="x")])
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "image_sub_path 'x' without an image" in err.details()
    assert not cenv.list()


def test_image_volume_survives_a_restart(cenv):
    data = data_image(cenv.registry)
    pull(cenv.d, data)
    pod = cenv.run_pod()
    cid = cenv.run(pod, "v", command=SLEEPER, mounts=[image_mount("/vol", data)])
    pid = cenv.pid(cid)
    cenv.d.kill9()
    cenv.d.start()
    assert cenv.pid(cid) == pid and cenv.state(cid) == pb.CONTAINER_RUNNING
    assert [m.image.image for m in cenv.status(cid).status.mounts] == [data]
    assert sh(cenv, cid, "cat /vol/data/hello.txt") == (0, "hello from the image\n")
    # The record, not memory, says the image is in use.
    err = rpc_error(remove, cenv.d, data)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    cenv.d.restart()
    cenv.remove(cid)
    assert not staged(cenv)
    remove(cenv.d, data)


def test_kill_in_create_leaves_no_image_mount(paused):
    """crisp killed after the volume was mounted and before 'runtime create' finished: the
    next start removes the half-made container with its mount, and the image is free."""
    env = paused.env
    data = data_image(env.registry)
    pull(env.d, data)
    pod = paused.run_pod()
    cfg = env.config("v", command=SLEEPER, mounts=[image_mount("/vol", data)])
    req = pb.CreateContainerRequest(pod_sandbox_id=pod, config=cfg,
                                    sandbox_config=env.pods[pod])
    paused.kill_during("before-create", "CreateContainer", req)
    assert not env.list()
    assert not staged(env), staged(env)
    remove(env.d, data)
