"""Tests of the test harness itself: the image builder (contrib/test-images)
and the local registry (registry_harness.py).  No crisp daemon involved.

Run as root: /usr/bin/python3 -m pytest -v test/integration/test_harness.py
"""

import base64
import gzip
import io
import json
import os
import shutil
import socket
import tarfile

import pytest

import registry_harness as rh

build = rh.import_builder()

pytestmark = pytest.mark.skipif(
    not all(os.access(p, os.X_OK) for p in (rh.REGISTRY_BIN, rh.SKOPEO_BIN, rh.HTPASSWD_BIN,
                                             rh.OPENSSL_BIN, build.BUSYBOX)),
    reason="needs docker-registry, skopeo, htpasswd (apache2-utils), openssl, busybox-static")

USERS = {"alice": "wonderland", "bob": "builder"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return rh.build_images(tmp_path_factory.mktemp("images"))


@pytest.fixture
def registry():
    reg = rh.Registry()
    yield reg
    reg.stop()


def layer_members(layout_dir, digest):
    blob = os.path.join(layout_dir, "blobs", "sha256", digest.split(":", 1)[1])
    with open(blob, "rb") as f:
        data = gzip.decompress(f.read())
    return {m.name: m for m in tarfile.open(fileobj=io.BytesIO(data))}


def read_blobs(layout_dir):
    root = os.path.join(layout_dir, "blobs", "sha256")
    out = {}
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name), "rb") as f:
            out[name] = f.read()
    return out


# --- the builder -----------------------------------------------------------------


def test_build_is_reproducible(images, tmp_path):
    again = rh.build_images(tmp_path)
    for name, res in images.items():
        assert again[name]["manifest"] == res["manifest"]
        assert again[name]["layers"] == res["layers"]
        assert read_blobs(again[name]["dir"]) == read_blobs(res["dir"])
        with open(os.path.join(res["dir"], "index.json"), "rb") as a, \
                open(os.path.join(again[name]["dir"], "index.json"), "rb") as b:
            assert a.read() == b.read()


def test_busybox_layout(images):
    res = images["busybox"]
    assert len(res["layers"]) == 1
    members = layer_members(res["dir"], res["layers"][0])
    sh = members["bin/sh"]
    assert sh.issym() and sh.linkname == "busybox"
    assert members["bin/busybox"].isreg() and members["bin/busybox"].mode == 0o755
    assert members["tmp"].mode == 0o1777
    assert all(m.mtime == build.MTIME for m in members.values())
    assert all(m.uid == 0 and m.gid == 0 for n, m in members.items() if n != "home/web")
    passwd = members["etc/passwd"]
    assert passwd.mode == 0o644
    assert members["home/web"].uid == 1002 and members["home/web"].gid == 1003
    with open(os.path.join(res["dir"], "blobs", "sha256", res["config"].split(":")[1])) as f:
        config = json.load(f)
    assert config["config"]["Cmd"] == ["sh"]
    assert config["rootfs"]["diff_ids"] == res["diff_ids"]


def test_multilayer_layout(images):
    res = images["multilayer"]
    assert len(res["layers"]) == 3
    # The base layer is the busybox image's layer, byte for byte.
    assert res["layers"][0] == images["busybox"]["layers"][0]
    l2 = layer_members(res["dir"], res["layers"][1])
    l3 = layer_members(res["dir"], res["layers"][2])
    assert l2["data/keep"].mtime == build.KEEP_MTIME != build.MTIME
    assert l2["data/keep-hard"].islnk() and l2["data/keep-hard"].linkname == "data/keep"
    assert l2["data/keep-link"].issym()
    assert "data/.wh.gone" in l3 and "opaque/.wh..wh..opq" in l3 and "opaque/new" in l3
    names3 = list(l3)
    assert names3.index("opaque/.wh..wh..opq") < names3.index("opaque/new")
    assert l2["data/shared"].size == l3["data/shared-again"].size == len(build.SHARED)


def test_builder_writes_hostile_entries(tmp_path):
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    entries = [
        build.file_("../escape", "x"), build.file_("/abs", "y"),
        build.symlink("link", "../../../../etc/shadow"),
        build.device("dev/mem2", "char", 1, 1), build.device("dev/sda9", "block", 8, 9),
        build.fifo("fifo"),
        build.file_("capped", "z", xattrs={"security.capability": cap, "user.k": "v"}),
    ]
    res = build.build_image(str(tmp_path), [entries], sort=False)
    members = layer_members(str(tmp_path), res["layers"][0])
    assert list(members) == [e["path"] for e in entries]  # verbatim, in order
    assert members["dev/mem2"].ischr() and members["dev/mem2"].devmajor == 1
    assert members["dev/sda9"].isblk() and members["dev/sda9"].devminor == 9
    pax = members["capped"].pax_headers
    assert pax["SCHILY.xattr.user.k"] == "v"
    assert pax["SCHILY.xattr.security.capability"].encode("utf-8", "surrogateescape") == cap


# --- the registry ----------------------------------------------------------------


def test_push_catalog_tags_manifest(images, registry, tmp_path):
    again = rh.build_images(tmp_path)
    d1 = registry.push(images["busybox"]["dir"], "latest", "test/busybox", "latest")
    d2 = registry.push(images["multilayer"]["dir"], "latest", "test/multilayer", "v1")
    assert d1 == again["busybox"]["manifest"]
    assert d2 == again["multilayer"]["manifest"]
    assert registry.catalog() == ["test/busybox", "test/multilayer"]
    assert registry.list_tags("test/multilayer") == ["v1"]
    for name, ref, res in (("test/busybox", "latest", again["busybox"]),
                           ("test/multilayer", "v1", again["multilayer"])):
        body, media_type, digest = registry.get_manifest(name, ref)
        assert media_type == rh.MT_OCI_MANIFEST and digest == res["manifest"]
        manifest = json.loads(body)
        assert [lay["digest"] for lay in manifest["layers"]] == res["layers"]
        config = json.loads(registry.get_blob(name, manifest["config"]["digest"]))
        assert config["rootfs"]["diff_ids"] == res["diff_ids"]


def test_push_zstd(images, registry):
    registry.push(images["multilayer"]["dir"], "latest", "test/zstd", "latest", zstd=True)
    manifest = json.loads(registry.get_manifest("test/zstd", "latest")[0])
    assert len(manifest["layers"]) == 3
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+zstd"
    blob = registry.get_blob("test/zstd", manifest["layers"][1]["digest"])
    assert blob[:4] == b"\x28\xb5\x2f\xfd"  # zstd frame magic
    config = json.loads(registry.get_blob("test/zstd", manifest["config"]["digest"]))
    # Compression changes blob digests, never the uncompressed diff_ids.
    assert config["rootfs"]["diff_ids"] == images["multilayer"]["diff_ids"]


def test_multiarch_index(tmp_path, registry):
    res = build.build_multiarch(str(tmp_path), [build.busybox_layer()], build.BUSYBOX_CONFIG)
    digest = registry.push(str(tmp_path), "latest", "test/multiarch", "latest",
                           all_platforms=True)
    assert digest == res["index"]
    body, media_type, _ = registry.get_manifest("test/multiarch", "latest")
    assert media_type == rh.MT_OCI_INDEX
    platforms = [m["platform"]["architecture"] for m in json.loads(body)["manifests"]]
    assert platforms == ["amd64", "arm64"]
    arm = res["manifests"]["arm64"]
    config = json.loads(registry.get_blob("test/multiarch", arm["config"]))
    assert config["architecture"] == "arm64"
    # Our own uploader pushes the same bytes, so the same digest.
    assert registry.push_layout(str(tmp_path), "latest", "raw/multiarch", "x") == res["index"]


def test_low_level_upload_and_corruption(registry):
    layer = gzip.compress(build.layer_tar([build.file_("hello", "hi\n")]), mtime=0)
    layer_digest = registry.put_blob("test/raw", layer)
    assert registry.get_blob("test/raw", layer_digest) == layer
    config = build.canonical_json({"architecture": "amd64", "os": "linux",
                                   "rootfs": {"type": "layers", "diff_ids": []}})
    config_digest = registry.put_blob("test/raw", config)
    manifest = {"schemaVersion": 2, "mediaType": rh.MT_OCI_MANIFEST,
                "config": {"mediaType": build.MT_CONFIG, "digest": config_digest,
                           "size": len(config)},
                "layers": [{"mediaType": build.MT_LAYER_GZIP, "digest": layer_digest,
                            "size": len(layer)}]}
    body = build.canonical_json(manifest)
    digest = registry.put_manifest("test/raw", "one", body, rh.MT_OCI_MANIFEST)
    assert digest == build.sha256(body)
    assert registry.get_manifest("test/raw", "one")[0] == body
    # The registry now serves bytes that do not hash to the digest asked for.
    registry.corrupt_blob(layer_digest, b"not the layer")
    assert registry.get_blob("test/raw", layer_digest) == b"not the layer"
    registry.delete_manifest("test/raw", digest)
    status, _, _ = registry.raw_request("GET", "/v2/test/raw/manifests/" + digest)
    assert status == 404


def test_basic_auth(images):
    with rh.Registry(auth="basic", users=USERS) as reg:
        status, headers, _ = reg.raw_request("GET", "/v2/")
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Basic ")
        bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
        assert reg.raw_request("GET", "/v2/", {"Authorization": bad})[0] == 401
        good = "Basic " + base64.b64encode(b"bob:builder").decode()
        assert reg.raw_request("GET", "/v2/", {"Authorization": good})[0] == 200
        with pytest.raises(rh.HarnessError):
            reg.push(images["busybox"]["dir"], "latest", "test/busybox", "latest",
                     creds="alice:wrong")
        reg.push(images["busybox"]["dir"], "latest", "test/busybox", "latest")
        assert reg.raw_request("GET", "/v2/test/busybox/tags/list")[0] == 401
        assert reg.list_tags("test/busybox") == ["latest"]


def test_token_auth(images):
    with rh.Registry(auth="token", users=USERS) as reg:
        status, headers, _ = reg.raw_request("GET", "/v2/test/busybox/manifests/latest")
        assert status == 401
        challenge = headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ")
        params = dict(rh._parse_challenge(challenge))
        assert params["realm"] == reg.token_realm
        assert params["service"] == reg.SERVICE
        assert params["scope"] == "repository:test/busybox:pull"
        # The token server itself wants credentials (no anonymous tokens here).
        with pytest.raises(rh.HarnessError):
            reg.fetch_token(challenge, creds="")
        with pytest.raises(rh.HarnessError):
            reg.fetch_token(challenge, creds="alice:wrong")

        reg.push(images["busybox"]["dir"], "latest", "test/busybox", "latest")
        token = reg.fetch_token(challenge, creds="alice:wonderland")
        auth = {"Authorization": "Bearer " + token, "Accept": rh.MT_OCI_MANIFEST}
        status, headers, _ = reg.raw_request("GET", "/v2/test/busybox/manifests/latest", auth)
        assert status == 200
        assert headers["Docker-Content-Digest"] == images["busybox"]["manifest"]
        # A token for one repository does not open another.
        other = reg.raw_request("GET", "/v2/test/other/manifests/latest", auth)[0]
        assert other == 401
        # A token with a broken signature is refused.
        head, payload, sig = token.split(".")
        forged = head + "." + payload + "." + sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
        bad = {"Authorization": "Bearer " + forged, "Accept": rh.MT_OCI_MANIFEST}
        assert reg.raw_request("GET", "/v2/test/busybox/manifests/latest", bad)[0] == 401
        assert reg.catalog() == ["test/busybox"]
        assert any(t["user"] == "alice" for t in reg.tokens_issued)


def test_anonymous_tokens(images):
    with rh.Registry(auth="token", users=USERS, anonymous_token=True) as reg:
        reg.push(images["busybox"]["dir"], "latest", "test/busybox", "latest")
        _, headers, _ = reg.raw_request("GET", "/v2/test/busybox/tags/list")
        token = reg.fetch_token(headers["WWW-Authenticate"], creds="")
        status, _, body = reg.raw_request("GET", "/v2/test/busybox/tags/list",
                                          {"Authorization": "Bearer " + token})
        assert status == 200 and json.loads(body)["tags"] == ["latest"]


def test_port_collision_is_retried(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    ports = [taken.getsockname()[1]]
    real_free_port = rh.free_port
    monkeypatch.setattr(rh, "free_port", lambda: ports.pop() if ports else real_free_port())
    try:
        with rh.Registry() as reg:
            assert not ports  # the taken port was offered first
            assert reg.port != taken.getsockname()[1]
            assert reg.raw_request("GET", "/v2/")[0] == 200
    finally:
        taken.close()


def test_stop_cleans_up():
    reg = rh.Registry(auth="token", users=USERS)
    proc, workdir, port = reg.proc, reg.workdir, reg.port
    token_port = reg.token_server.port
    reg.stop()
    assert proc.poll() is not None
    assert not os.path.exists(workdir)
    for p in (port, token_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0
    reg.stop()  # idempotent


def test_context_manager_cleans_up_on_error():
    with pytest.raises(ZeroDivisionError):
        with rh.Registry() as reg:
            proc, workdir = reg.proc, reg.workdir
            1 / 0  # noqa: B018
    assert proc.poll() is not None and not os.path.exists(workdir)
    assert shutil.which(rh.REGISTRY_BIN)  # the binary itself is untouched
