"""Helpers for crisp's image-service integration tests (test_image*.py).

Owns: registries.d text for a test registry (insecure, and the mirror for
registry.k8s.io and gcr.io), a daemon factory configured with it, small CRI call
wrappers, building and pushing hand-made images, counting blob downloads in the
registry log, a stalling proxy (for kill -9 in the middle of a pull), and a look at
an image's root filesystem through test/tools/crisp-image-tool.
"""
import contextlib
import http.client
import os
import re
import shutil
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cri_client import pb
from crisp_daemon import BUILDDIR
from registry_harness import import_builder

IMAGE_TOOL = os.path.join(BUILDDIR, "test", "tools", "crisp-image-tool")
MIRRORED = ("registry.k8s.io", "gcr.io")


def registries_conf(host, mirror=None):
    """registries.d text: HOST is plain HTTP; registry.k8s.io and gcr.io are served
    only from MIRROR (default HOST)."""
    mirror = mirror or host
    text = '[registry "%s"]\ninsecure = true\n' % host
    if mirror != host:
        text += '[registry "%s"]\ninsecure = true\n' % mirror
    for name in MIRRORED:
        text += '[registry "%s"]\nmirrors = %s\nmirrors-only = true\n' % (name, mirror)
    return text


def start_crisp(crisp_factory, host, mirror=None, config="", **kw):
    d = crisp_factory(config=config, start=False, **kw)
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(host, mirror))
    return d.start()


def pull(d, image, auth=None, timeout=120):
    req = pb.PullImageRequest(image=pb.ImageSpec(image=image))
    if auth is not None:
        req.auth.CopyFrom(auth)
    return d.client.call("PullImage", req, timeout=timeout).image_ref


def list_images(d, filter_image=None):
    req = pb.ListImagesRequest()
    if filter_image:
        req.filter.image.image = filter_image
    return list(d.client.call("ListImages", req).images)


def status(d, image, verbose=False):
    req = pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=verbose)
    return d.client.call("ImageStatus", req)


def remove(d, image):
    d.client.call("RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=image)))


def storage_dir(d):
    return os.path.join(d.root, "storage")


def stored_layers(d):
    path = os.path.join(storage_dir(d), "layers")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def build_and_push(reg, name, layers, tag="latest", config=None, sort=True,
                   compression="gzip"):
    """Builds an image of LAYERS (entry lists or raw tars) and uploads it unchanged
    (our own uploader: hostile layers reach the registry as they are)."""
    build = import_builder()
    out = tempfile.mkdtemp(prefix="crisp-img-")
    try:
        res = build.build_image(out, layers, config=config, tag=tag, sort=sort,
                                compression=compression)
        res["pushed"] = reg.push_layout(out, tag, name, tag)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return res


def blob_gets(reg, digest):
    """How many times the registry served DIGEST (successful GETs)."""
    pat = re.compile(r'"GET /v2/[^ ]*/blobs/%s HTTP/[0-9.]+" 200' % re.escape(digest))
    return len(pat.findall(reg.log()))


@contextlib.contextmanager
def rootfs(d, image):
    """The image's root filesystem, mounted read-only; the daemon must be stopped."""
    assert d.proc is None, "stop the daemon before looking at its storage"
    target = tempfile.mkdtemp(prefix="crisp-rootfs-")
    subprocess.run([IMAGE_TOOL, "mount", storage_dir(d), image, target], check=True,
                   capture_output=True, text=True)
    try:
        yield target
    finally:
        subprocess.run([IMAGE_TOOL, "umount", target], check=True)
        os.rmdir(target)


class StallingProxy:
    """A plain-HTTP front for a registry that forwards everything, except that blob
    downloads of STALL_DIGEST send half their body and then hang until stop(), and the
    first FAIL_FIRST requests for FAIL_DIGEST get 503."""

    def __init__(self, upstream, stall_digest, fail_digest=None, fail_first=0):
        self.upstream, self.stall_digest = upstream, stall_digest
        self.fail_digest, self.fail_left, self.failed = fail_digest, fail_first, 0
        self.stalled = threading.Event()
        self.release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                proxy._forward(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _forward(self, h):
        if self.fail_digest and self.fail_digest in h.path and self.fail_left > 0:
            self.fail_left -= 1
            self.failed += 1
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() != "host"}
        conn.request("GET", h.path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.stall_digest in h.path and resp.status == 200:
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            self.stalled.set()
            self.release.wait(60)
            return
        h.wfile.write(body)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
