"""The CRI ImageService against a real local registry: pulls (tag, digest, mirror,
index, auth, zstd), what a container would see (whiteouts, mtimes), verification,
hostile layers, concurrency, removal and pruning, restarts and crashes."""
import concurrent.futures
import json
import os
import shutil
import stat
import tarfile
import threading
import time
import uuid

import grpc
import pytest

from cri_client import pb
from image_harness import (StallingProxy, blob_gets, build_and_push, list_images, pull,
                           remove, rootfs, start_crisp, status, storage_dir, stored_layers)
from registry_harness import Registry, import_builder

build = import_builder()


@pytest.fixture
def icrisp(crisp_factory, registry):
    return start_crisp(crisp_factory, registry.host)


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def rpc_error(fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    return e.value


def test_pull_by_tag_list_status_fsinfo(icrisp, registry, test_images):
    ref = registry.host + "/busybox:latest"
    _, _, digest = registry.get_manifest("busybox", "latest")
    image_id = pull(icrisp, ref)
    assert image_id == test_images["busybox"]["config"]
    imgs = list_images(icrisp)
    assert [i.id for i in imgs] == [image_id]
    img = imgs[0]
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [registry.host + "/busybox@" + digest]
    manifest = json.loads(registry.get_manifest("busybox", digest)[0])
    assert img.size == manifest["config"]["size"] + sum(l["size"] for l in manifest["layers"])
    for name in (ref, image_id, image_id[7:19], registry.host + "/busybox@" + digest,
                 registry.host + "/busybox"):
        assert status(icrisp, name).image.id == image_id, name
    assert not status(icrisp, registry.host + "/nothing:here").HasField("image")
    info = json.loads(status(icrisp, ref, verbose=True).info["info"])
    assert info["imageSpec"]["architecture"] == "amd64"
    assert info["imageSpec"]["rootfs"]["diff_ids"] == test_images["busybox"]["diff_ids"]
    assert [i.id for i in list_images(icrisp, ref)] == [image_id]
    assert list_images(icrisp, registry.host + "/other:latest") == []
    fs = icrisp.client.call("ImageFsInfo", pb.ImageFsInfoRequest()).image_filesystems
    assert len(fs) == 1 and fs[0].fs_id.mountpoint == storage_dir(icrisp)
    assert fs[0].used_bytes.value > 1000000 and fs[0].inodes_used.value > 10


def test_pull_by_digest(icrisp, registry, test_images):
    _, _, digest = registry.get_manifest("multilayer", "latest")
    ref = "%s/multilayer@%s" % (registry.host, digest)
    image_id = pull(icrisp, ref)
    assert image_id == test_images["multilayer"]["config"]
    img = status(icrisp, ref).image
    assert list(img.repo_digests) == [ref]
    assert list(img.repo_tags) == []


@pytest.mark.parametrize("name", ["registry.k8s.io/busybox:latest", "gcr.io/busybox"])
def test_pull_through_mirror_keeps_asked_name(icrisp, registry, test_images, name):
    image_id = pull(icrisp, name)
    assert image_id == test_images["busybox"]["config"]
    img = status(icrisp, name).image
    full = name if ":" in name else name + ":latest"
    assert list(img.repo_tags) == [full]
    assert img.repo_digests[0].startswith(full.rsplit(":", 1)[0] + "@sha256:")


def test_mirrors_only_without_mirror_is_refused(crisp_factory, registry):
    d = crisp_factory(start=False)
    with open(os.path.join(d.registries_dir, "x.conf"), "w") as f:
        f.write('[registry "quay.io"]\nmirrors-only = true\n')
    d.start()
    err = rpc_error(pull, d, "quay.io/foo/bar:1")
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "quay.io" in err.details()


def test_index_picks_linux_amd64(icrisp, registry):
    if os.uname().machine != "x86_64":
        pytest.skip("the test index has amd64 and arm64 entries; this host is neither")
    out = os.path.join(registry.workdir, unique("multiarch"))
    layer = [build.file_("arch", os.uname().machine)]
    res = build.build_multiarch(out, [layer])
    name = unique("multiarch")
    index_digest = registry.push_layout(out, "latest", name, "latest")
    assert index_digest == res["index"]
    image_id = pull(icrisp, "%s/%s:latest" % (registry.host, name))
    assert image_id == res["manifests"]["amd64"]["config"]
    img = status(icrisp, image_id).image
    # the repo digest is the one the user can pull by: the index's
    assert list(img.repo_digests) == ["%s/%s@%s" % (registry.host, name, index_digest)]


@pytest.mark.parametrize("bad", ["Busybox", "busybox:", "a//b", "x@sha256:1234"])
def test_malformed_reference(icrisp, bad):
    err = rpc_error(pull, icrisp, bad)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad in err.details()


def test_missing_image_is_not_found(icrisp, registry):
    err = rpc_error(pull, icrisp, registry.host + "/does-not-exist:latest")
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert list_images(icrisp) == []


@pytest.mark.parametrize("user,uid,username", [("1002", 1002, ""), ("1002:1003", 1002, ""),
                                               ("www-data", None, "www-data"), ("", None, "")])
def test_image_user(icrisp, registry, user, uid, username):
    name = unique("user")
    build_and_push(registry, name, [[build.file_("f", user or "none")]], config={"User": user})
    image_id = pull(icrisp, "%s/%s:latest" % (registry.host, name))
    img = status(icrisp, image_id).image
    assert img.username == username
    if uid is None:
        assert not img.HasField("uid")
    else:
        assert img.uid.value == uid


@pytest.mark.parametrize("auth", ["token", "basic"])
def test_registry_auth(crisp_factory, test_images, auth):
    with Registry(auth=auth, users={"alice": "s3cret"}) as reg:
        reg.push(test_images["busybox"]["dir"], "latest", "private/busybox", "latest")
        d = start_crisp(crisp_factory, reg.host)
        ref = reg.host + "/private/busybox:latest"
        err = rpc_error(pull, d, ref)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err.details()
        bad = rpc_error(pull, d, ref, auth=pb.AuthConfig(username="alice", password="wrong"))
        assert bad.code() == grpc.StatusCode.UNAUTHENTICATED
        assert pull(d, ref, auth=pb.AuthConfig(username="alice", password="s3cret")) == \
            test_images["busybox"]["config"]
        # the `auth` form (base64 user:password) too, after forgetting the image
        remove(d, ref)
        import base64
        enc = base64.b64encode(b"alice:s3cret").decode()
        assert pull(d, ref, auth=pb.AuthConfig(auth=enc)) == test_images["busybox"]["config"]
        if auth == "token":
            assert any("repository:private/busybox:pull" in s
                       for t in reg.tokens_issued for s in t["scopes"])


def test_zstd_layers(crisp_factory, test_images):
    with Registry() as reg:
        reg.push(test_images["multilayer"]["dir"], "latest", "ml", "latest", zstd=True)
        manifest = json.loads(reg.get_manifest("ml", "latest")[0])
        assert all(l["mediaType"].endswith("+zstd") for l in manifest["layers"])
        d = start_crisp(crisp_factory, reg.host)
        image_id = pull(d, reg.host + "/ml:latest")
        assert image_id == test_images["multilayer"]["config"]
        d.stop()
        with rootfs(d, image_id) as root:
            assert os.path.isfile(os.path.join(root, "bin", "busybox"))


def test_gzip_layers_whiteouts_and_mtimes(crisp_factory, registry):
    name = unique("layers")
    mtime = 1234567890
    lower = [build.dir_("data"), build.file_("data/gone", "old"), build.file_("data/keep", "k"),
             build.dir_("opaque"), build.file_("opaque/old", "old"),
             build.file_("app/mod.py", "x = 1\n", mtime=mtime),
             build.file_("app/same1", "same"), build.file_("app/same2", "same"),
             build.file_("app/hl", "hard"), build.hardlink("app/hl2", "app/hl")]
    upper = [build.whiteout("data/gone"), build.opaque("opaque"), build.file_("opaque/new", "n")]
    res = build_and_push(registry, name, [lower, upper])
    d = start_crisp(crisp_factory, registry.host)
    image_id = pull(d, "%s/%s:latest" % (registry.host, name))
    d.stop()
    with rootfs(d, image_id) as root:
        p = lambda *x: os.path.join(root, *x)  # noqa: E731
        assert not os.path.lexists(p("data", "gone"))
        assert open(p("data", "keep")).read() == "k"
        assert sorted(os.listdir(p("opaque"))) == ["new"]
        assert os.stat(p("app", "mod.py")).st_mtime == mtime
        assert os.stat(p("data", "keep")).st_mtime == build.MTIME
        assert os.stat(p("app", "same1")).st_ino != os.stat(p("app", "same2")).st_ino
        assert os.stat(p("app", "hl")).st_ino == os.stat(p("app", "hl2")).st_ino
    assert len(res["layers"]) == 2


def test_digest_mismatch_rejected_nothing_listed(icrisp, registry):
    name = unique("corrupt")
    res = build_and_push(registry, name, [[build.file_("a", os.urandom(64).hex())],
                                          [build.file_("b", os.urandom(64).hex())]])
    bad = res["layers"][1]
    registry.corrupt_blob(bad, b"not the layer you are looking for")
    err = rpc_error(pull, icrisp, "%s/%s:latest" % (registry.host, name))
    assert bad in err.details()
    assert "mismatch" in err.details() or "bytes" in err.details()
    assert list_images(icrisp) == []
    assert stored_layers(icrisp) == []


def huge_entry_tar():
    """A tar whose one entry claims 10 GiB and then ends."""
    info = tarfile.TarInfo("huge")
    info.size = 10 << 30
    return info.tobuf(format=tarfile.PAX_FORMAT) + b"x" * 1024


HOSTILE_REJECTED = {
    "dotdot": lambda c: [[build.file_("../../../../../../.." + c + "/pwned", "x")]],
    "write-through-symlink": lambda c: [[build.symlink("esc", c), build.file_("esc/pwned", "x")]],
    "hardlink-outside": lambda c: [[build.hardlink("pw", "/etc/passwd")]],
    "hardlink-dotdot": lambda c: [[build.hardlink("pw", "../../../../etc/passwd")]],
    "huge-size": lambda c: [huge_entry_tar()],
    "not-a-tar": lambda c: [b"\x00garbage" * 200],
}


@pytest.mark.parametrize("case", sorted(HOSTILE_REJECTED))
def test_hostile_layer_rejected(icrisp, registry, tmp_path, case):
    canary = tmp_path / "canary"
    canary.mkdir()
    name = unique("hostile")
    build_and_push(registry, name, HOSTILE_REJECTED[case](str(canary)), sort=False)
    err = rpc_error(pull, icrisp, "%s/%s:latest" % (registry.host, name))
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DATA_LOSS), \
        err.details()
    assert list(canary.iterdir()) == []
    assert not os.path.exists("/etc/passwd.crisp") and list_images(icrisp) == []


def test_hostile_layers_confined(crisp_factory, registry, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    name = unique("confined")
    layers = [
        [build.symlink("esc", str(canary)), build.file_(str(canary) + "/abs", "abs"),
         build.device("dev/sda", "block", 8, 0), build.device("dev/null", "char", 1, 3),
         build.fifo("run/fifo"),
         build.file_("x", "data", xattrs={"trusted.overlay.redirect": "/etc/shadow",
                                          "user.kept": "yes"})],
        # a directory where the lower layer has a symlink: must not write through it
        [build.dir_("esc"), build.file_("esc/pwned", "inside")],
    ]
    build_and_push(registry, name, layers, sort=False)
    d = start_crisp(crisp_factory, registry.host)
    image_id = pull(d, "%s/%s:latest" % (registry.host, name))
    d.stop()
    assert list(canary.iterdir()) == []
    with rootfs(d, image_id) as root:
        p = lambda x: os.path.join(root, x.lstrip("/"))  # noqa: E731
        assert open(p(str(canary) + "/abs")).read() == "abs"
        assert os.path.isdir(p("esc")) and not os.path.islink(p("esc"))
        assert open(p("esc/pwned")).read() == "inside"
        assert stat.S_ISBLK(os.lstat(p("dev/sda")).st_mode)
        assert os.major(os.lstat(p("dev/sda")).st_rdev) == 8
        assert stat.S_ISCHR(os.lstat(p("dev/null")).st_mode)
        assert stat.S_ISFIFO(os.lstat(p("run/fifo")).st_mode)
        assert open(p("x")).read() == "data"
        assert os.getxattr(p("x"), "user.kept") == b"yes"
    assert list(canary.iterdir()) == []


def test_concurrent_pulls_share_one_download(icrisp, registry):
    name = unique("concurrent")
    res = build_and_push(registry, name, [[build.file_("a", os.urandom(4 << 20))],
                                          [build.file_("b", os.urandom(4 << 20))]])
    ref = "%s/%s:latest" % (registry.host, name)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        ids = list(ex.map(lambda _: pull(icrisp, ref), range(2)))
    assert ids == [res["config"]] * 2
    for layer in res["layers"]:
        assert blob_gets(registry, layer) == 1
    assert len(list_images(icrisp)) == 1


def test_tag_and_digest_pulled_at_once_share_layer_downloads(icrisp, registry):
    name = unique("twonames")
    res = build_and_push(registry, name, [[build.file_("a", os.urandom(4 << 20))],
                                          [build.file_("b", os.urandom(4 << 20))]])
    refs = ["%s/%s:latest" % (registry.host, name), "%s/%s@%s" % (registry.host, name,
                                                                  res["pushed"])]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        ids = list(ex.map(lambda r: pull(icrisp, r), refs))
    assert ids == [res["config"]] * 2
    for layer in res["layers"]:
        assert blob_gets(registry, layer) == 1
    img = status(icrisp, res["config"]).image
    assert list(img.repo_tags) == [refs[0]] and list(img.repo_digests) == [refs[1]]


def test_record_with_missing_layer_is_forgotten(icrisp, registry):
    pull(icrisp, registry.host + "/busybox:latest")
    icrisp.stop()
    layers = os.path.join(storage_dir(icrisp), "layers")
    shutil.rmtree(os.path.join(layers, stored_layers(icrisp)[0]))
    icrisp.start()
    assert list_images(icrisp) == []
    assert stored_layers(icrisp) == []


def test_remove_and_prune(icrisp, registry, test_images):
    bb = pull(icrisp, registry.host + "/busybox:latest")
    ml = pull(icrisp, registry.host + "/multilayer:latest")
    hexes = lambda ids: sorted(i[7:] for i in ids)  # noqa: E731
    both = set(test_images["busybox"]["diff_ids"]) | set(test_images["multilayer"]["diff_ids"])
    assert stored_layers(icrisp) == hexes(both)
    objects = os.path.join(storage_dir(icrisp), "repo", "objects")
    count = lambda: sum(len(f) for _, _, f in os.walk(objects))  # noqa: E731
    before = count()
    remove(icrisp, registry.host + "/multilayer:latest")
    assert [i.id for i in list_images(icrisp)] == [bb]
    assert stored_layers(icrisp) == hexes(test_images["busybox"]["diff_ids"])
    assert count() < before
    remove(icrisp, ml)  # already gone: fine
    remove(icrisp, bb)
    assert list_images(icrisp) == [] and stored_layers(icrisp) == []


def test_tag_moves_to_newer_image(icrisp, registry):
    name = unique("moving")
    ref = "%s/%s:latest" % (registry.host, name)
    first = build_and_push(registry, name, [[build.file_("v", "1")]])
    id1 = pull(icrisp, ref)
    build_and_push(registry, name, [[build.file_("v", "2")]])
    id2 = pull(icrisp, ref)
    assert id1 == first["config"] and id2 != id1
    assert list(status(icrisp, id1).image.repo_tags) == []
    assert list(status(icrisp, id2).image.repo_tags) == [ref]


def test_restart_keeps_images_and_quarantines_corrupt_records(icrisp, registry):
    image_id = pull(icrisp, registry.host + "/busybox:latest")
    records = os.path.join(storage_dir(icrisp), "images")
    with open(os.path.join(records, "f" * 64 + ".json"), "w") as f:
        f.write("{not json")
    icrisp.restart()
    assert [i.id for i in list_images(icrisp)] == [image_id]
    assert os.path.exists(os.path.join(records, "f" * 64 + ".json.corrupt"))


def test_kill9_during_pull_leaves_nothing(crisp_factory, registry):
    name = unique("killed")
    res = build_and_push(registry, name, [[build.file_("a", os.urandom(1 << 20))],
                                          [build.file_("b", os.urandom(1 << 20))],
                                          [build.file_("c", os.urandom(8 << 20))]])
    proxy = StallingProxy(registry.host, res["layers"][2])
    try:
        d = start_crisp(crisp_factory, registry.host, mirror=proxy.host)
        errors = []
        t = threading.Thread(target=lambda: errors.append(
            rpc_error(pull, d, "registry.k8s.io/%s:latest" % name)))
        t.start()
        assert proxy.stalled.wait(30)
        deadline = time.monotonic() + 10
        while len(stored_layers(d)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(stored_layers(d)) == 2  # the small layers made it in before the kill
        d.kill9()
        t.join(30)
        d.start()
        assert list_images(d) == []
        assert stored_layers(d) == []
        assert os.listdir(os.path.join(storage_dir(d), "tmp")) == []
    finally:
        proxy.stop()


def test_transient_errors_are_retried(crisp_factory, registry):
    name = unique("flaky")
    res = build_and_push(registry, name, [[build.file_("a", "flaky")]])
    proxy = StallingProxy(registry.host, "sha256:none", fail_digest=res["layers"][0],
                          fail_first=2)
    try:
        d = start_crisp(crisp_factory, registry.host, mirror=proxy.host)
        assert pull(d, "gcr.io/%s:latest" % name) == res["config"]
        assert proxy.failed == 2
    finally:
        proxy.stop()


def test_deadline_cancels_a_stalled_pull(crisp_factory, registry):
    name = unique("deadline")
    res = build_and_push(registry, name, [[build.file_("a", os.urandom(1 << 20))]])
    proxy = StallingProxy(registry.host, res["layers"][0])
    try:
        d = start_crisp(crisp_factory, registry.host, mirror=proxy.host)
        err = rpc_error(pull, d, "registry.k8s.io/%s:latest" % name, timeout=3)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # the download is aborted at once, not when the proxy lets go (60 s)
        deadline = time.monotonic() + 10
        while "cancelled" not in open(d.log_path).read() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "cancelled" in open(d.log_path).read()
        assert list_images(d) == [] and stored_layers(d) == []
        proxy.release.set()
        # and the daemon still pulls afterwards
        assert pull(d, "%s/%s:latest" % (registry.host, name)) == res["config"]
    finally:
        proxy.stop()
