#!/usr/bin/python3
"""Deterministic OCI test images for crisp's integration tests (stdlib only).

Owns: layer tar generation, OCI image-layout writing (blobs, manifest, config,
index.json) and the stock test images ``busybox`` and ``multilayer``.

Command line::

    /usr/bin/python3 contrib/test-images/build.py OUT_DIR [NAME ...]

writes one OCI layout per image under ``OUT_DIR/<name>`` tagged ``latest`` and
prints ``<name> <manifest digest>`` lines.  Two runs give byte-identical blobs:
entries are sorted, owners are fixed, mtimes are fixed (2021-01-01, deliberately
not zero so tests can check that mtimes survive unpacking), gzip streams carry
mtime 0 and no file name, and JSON is written with sorted keys.

As a library (``sys.path.insert(0, "contrib/test-images"); import build``)::

    layer = [build.dir_("etc"), build.file_("etc/motd", b"hi\\n", mode=0o600)]
    digests = build.build_image(out, layers=[layer], config={"Cmd": ["sh"]})
    # {'manifest': 'sha256:..', 'config': 'sha256:..', 'layers': [...],
    #  'diff_ids': [...], 'manifest_size': N, 'tag': 'latest'}

A layer is a list of entries (dicts) or raw bytes (an already-made tar, used as
is; handy for truncated or non-tar garbage).  Entry keys:

    path      name inside the tar, written verbatim (``../x`` and ``/x`` allowed)
    type      file | dir | symlink | hardlink | char | block | fifo
    mode      permission bits (default 0644 files, 0755 dirs, 0777 symlinks)
    uid, gid  default 0;  uname, gname default ""
    mtime     default MTIME (2021-01-01T00:00:00Z)
    content   bytes, for files
    linkname  target, for symlink and hardlink
    devmajor, devminor   for char and block
    xattrs    {name: bytes or str}, written as PAX ``SCHILY.xattr.<name>``
    pax       extra raw PAX headers {key: str}

Helpers ``file_ dir_ symlink hardlink device fifo whiteout opaque`` build
entries.  ``build_image(..., sort=False)`` keeps the given entry order (for
hostile layers); otherwise entries are sorted by path components, hard links
last so that their targets always precede them.  ``compression`` is ``gzip``
(default) or ``none``.  ``build_multiarch`` writes one manifest per platform and
an image index tagged in index.json.
"""

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MTIME = 1609459200  # 2021-01-01T00:00:00Z
CREATED = "2021-01-01T00:00:00Z"

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"

DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

# --- entries -------------------------------------------------------------------


def file_(path, content=b"", mode=0o644, **kw):
    if isinstance(content, str):
        content = content.encode()
    return dict(kw, path=path, type="file", mode=mode, content=content)


def dir_(path, mode=0o755, **kw):
    return dict(kw, path=path, type="dir", mode=mode)


def symlink(path, target, **kw):
    return dict(kw, path=path, type="symlink", linkname=target, mode=kw.pop("mode", 0o777))


def hardlink(path, target, **kw):
    return dict(kw, path=path, type="hardlink", linkname=target)


def device(path, kind, major, minor, mode=0o666, **kw):
    return dict(kw, path=path, type=kind, devmajor=major, devminor=minor, mode=mode)


def fifo(path, mode=0o644, **kw):
    return dict(kw, path=path, type="fifo", mode=mode)


def whiteout(path, **kw):
    """Entry that deletes PATH from lower layers (``dir/.wh.name``)."""
    head, _, name = path.rpartition("/")
    return file_((head + "/" if head else "") + ".wh." + name, b"", mode=0o644, **kw)


def opaque(dirpath, **kw):
    """Entry that hides everything lower layers put under DIRPATH."""
    return file_(dirpath.rstrip("/") + "/.wh..wh..opq", b"", mode=0o644, **kw)


# --- tar and blobs -------------------------------------------------------------

_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "char": tarfile.CHRTYPE,
    "block": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def _sort_key(entry):
    # Path components, so a directory precedes its contents; hard links after
    # everything else so their targets are always already in the archive.
    parts = tuple(p for p in entry["path"].split("/") if p not in ("", "."))
    return (entry["type"] == "hardlink", parts)


def _tarinfo(entry):
    kind = entry["type"]
    info = tarfile.TarInfo(entry["path"])
    info.type = _TYPES[kind]
    info.mode = entry.get("mode", 0o755 if kind == "dir" else 0o644)
    info.uid = entry.get("uid", 0)
    info.gid = entry.get("gid", 0)
    info.uname = entry.get("uname", "")
    info.gname = entry.get("gname", "")
    info.mtime = entry.get("mtime", MTIME)
    info.linkname = entry.get("linkname", "")
    info.devmajor = entry.get("devmajor", 0)
    info.devminor = entry.get("devminor", 0)
    pax = dict(entry.get("pax", {}))
    for name, value in sorted(entry.get("xattrs", {}).items()):
        if isinstance(value, bytes):
            # tarfile encodes PAX values as UTF-8 text; binary xattrs beyond
            # that would need a raw writer.
            value = value.decode("utf-8", "surrogateescape")
        pax["SCHILY.xattr." + name] = value
    info.pax_headers = pax
    data = entry.get("content", b"") if kind == "file" else b""
    info.size = len(data)
    return info, data


def layer_tar(entries, sort=True):
    """Return the uncompressed tar bytes for ENTRIES (see module doc)."""
    if sort:
        entries = sorted(entries, key=_sort_key)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info, data = _tarinfo(entry)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def gzip_bytes(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Layout:
    """An OCI image layout directory: content-addressed blobs plus index.json."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))

    def put(self, data):
        digest = sha256(data)
        blob = os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1])
        if not os.path.exists(blob):
            tmp = blob + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, blob)
        return digest

    def blob(self, digest):
        with open(os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    def index(self):
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": []}

    def tag(self, tag, descriptor):
        """Point TAG in index.json at DESCRIPTOR, replacing an older entry."""
        index = self.index()
        kept = [
            d for d in index["manifests"] if d.get("annotations", {}).get(REF_NAME) != tag
        ]
        desc = dict(descriptor)
        desc["annotations"] = dict(desc.get("annotations", {}), **{REF_NAME: tag})
        kept.append(desc)
        kept.sort(key=lambda d: d["annotations"][REF_NAME])
        index["manifests"] = kept
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canonical_json(index))


def _make_config(config, diff_ids, architecture, os_name, variant):
    runtime = {"Env": list(DEFAULT_ENV), "WorkingDir": "/"}
    runtime.update(config or {})
    image = {
        "created": CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": CREATED, "created_by": "crisp contrib/test-images/build.py layer %d" % i}
            for i in range(len(diff_ids))
        ],
    }
    if variant:
        image["variant"] = variant
    return image


def _write_image(layout, layers, config, sort, compression, architecture, os_name, variant):
    layer_descs, diff_ids = [], []
    for layer in layers:
        tar = layer if isinstance(layer, (bytes, bytearray)) else layer_tar(layer, sort=sort)
        diff_ids.append(sha256(tar))
        if compression == "gzip":
            blob, media_type = gzip_bytes(tar), MT_LAYER_GZIP
        elif compression == "none":
            blob, media_type = bytes(tar), MT_LAYER_TAR
        else:
            raise ValueError("compression must be gzip or none")
        layer_descs.append({"mediaType": media_type, "digest": layout.put(blob), "size": len(blob)})
    cfg = canonical_json(_make_config(config, diff_ids, architecture, os_name, variant))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": layout.put(cfg), "size": len(cfg)},
        "layers": layer_descs,
    }
    body = canonical_json(manifest)
    return {
        "manifest": layout.put(body),
        "manifest_size": len(body),
        "config": manifest["config"]["digest"],
        "layers": [d["digest"] for d in layer_descs],
        "diff_ids": diff_ids,
    }


def build_image(out_dir, layers, config=None, tag="latest", sort=True, compression="gzip",
                architecture="amd64", os_name="linux", variant=None):
    """Write one image into the OCI layout OUT_DIR (created or extended), tagged TAG.

    Returns a dict: manifest, manifest_size, config, layers (blob digests),
    diff_ids, tag."""
    layout = Layout(out_dir)
    result = _write_image(layout, layers, config, sort, compression, architecture, os_name,
                          variant)
    layout.tag(tag, {"mediaType": MT_MANIFEST, "digest": result["manifest"],
                     "size": result["manifest_size"],
                     "platform": {"architecture": architecture, "os": os_name}})
    result["tag"] = tag
    return result


def build_multiarch(out_dir, layers, config=None, tag="latest",
                    platforms=(("amd64", None), ("arm64", "v8")), sort=True,
                    compression="gzip"):
    """Write one manifest per (architecture, variant) sharing LAYERS, and an OCI
    image index over them tagged TAG.  Returns {'index': digest, 'index_size',
    'manifests': {arch: result}, 'tag'}."""
    layout = Layout(out_dir)
    descs, per_arch = [], {}
    for arch, variant in platforms:
        res = _write_image(layout, layers, config, sort, compression, arch, "linux", variant)
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        descs.append({"mediaType": MT_MANIFEST, "digest": res["manifest"],
                      "size": res["manifest_size"], "platform": platform})
        per_arch[arch] = res
    body = canonical_json({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": descs})
    digest = layout.put(body)
    layout.tag(tag, {"mediaType": MT_INDEX, "digest": digest, "size": len(body)})
    return {"index": digest, "index_size": len(body), "manifests": per_arch, "tag": tag}


# --- the stock images ----------------------------------------------------------

BUSYBOX = os.environ.get("CRISP_TEST_BUSYBOX", "/bin/busybox")

# Applets linked into /bin when the host busybox has them (checked with --list).
APPLETS = """
[ ash awk base64 basename cat chmod chown cp cut date dd df dirname du echo env expr
false find free grep gunzip gzip head hostname id ifconfig ip kill ln ls md5sum mkdir
mkfifo mknod mktemp mount mv nc netstat nproc nslookup nsenter od pidof ping ping6 printf
ps pwd readlink realpath rm rmdir route sed seq setsid sh sha256sum sleep sort stat sync
tail tar tee test timeout top touch tr true truncate umount uname uniq unshare usleep wc
wget which whoami xargs yes
""".split()

PASSWD = """root:x:0:0:root:/root:/bin/sh
web:x:1002:1003:web user:/home/web:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP = """root:x:0:
web:x:1003:
nogroup:x:65534:
"""


def host_applets(busybox=BUSYBOX):
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    have = set(out.split())
    return sorted(a for a in APPLETS if a in have)


def busybox_layer(busybox=BUSYBOX):
    with open(busybox, "rb") as f:
        binary = f.read()
    entries = [
        dir_("bin"), dir_("dev"), dir_("etc"), dir_("home"),
        dir_("home/web", mode=0o750, uid=1002, gid=1003),
        dir_("proc"), dir_("root", mode=0o700), dir_("sys"), dir_("tmp", mode=0o1777),
        dir_("usr"), dir_("usr/bin"), dir_("var"), dir_("var/tmp", mode=0o1777),
        file_("bin/busybox", binary, mode=0o755),
        file_("etc/passwd", PASSWD), file_("etc/group", GROUP),
    ]
    entries += [symlink("bin/" + a, "busybox") for a in host_applets(busybox)]
    return entries


BUSYBOX_CONFIG = {"Cmd": ["sh"], "Env": list(DEFAULT_ENV), "WorkingDir": "/"}

# Same bytes in two layers (and twice in one layer) for dedup tests.
SHARED = b"crisp shared content: identical bytes in more than one layer\n" * 64
KEEP_MTIME = 1622551496  # 2021-06-01T12:44:56Z, distinct from MTIME on purpose


def multilayer_layers(busybox=BUSYBOX):
    layer2 = [
        dir_("data"),
        file_("data/keep", "keep\n", mtime=KEEP_MTIME),
        file_("data/gone", "gone\n"),
        hardlink("data/keep-hard", "data/keep"),
        symlink("data/keep-link", "keep"),
        file_("data/shared", SHARED),
        dir_("opaque"),
        file_("opaque/old1", "old1\n"),
        file_("opaque/old2", "old2\n"),
    ]
    layer3 = [
        dir_("data"),
        whiteout("data/gone"),
        file_("data/shared-again", SHARED),
        dir_("opaque"),
        opaque("opaque"),
        file_("opaque/new", "new\n"),
    ]
    return [busybox_layer(busybox), layer2, layer3]


IMAGES = {
    "busybox": lambda: ([busybox_layer()], BUSYBOX_CONFIG),
    "multilayer": lambda: (multilayer_layers(), BUSYBOX_CONFIG),
}


def build_all(out_dir, names=None):
    """Build the stock images into OUT_DIR/<name>; returns {name: build_image result}."""
    results = {}
    for name in names or sorted(IMAGES):
        layers, config = IMAGES[name]()
        results[name] = build_image(os.path.join(out_dir, name), layers, config)
    return results


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: %s OUT_DIR [%s ...]\n" % (argv[0], "|".join(sorted(IMAGES))))
        return 2
    unknown = [n for n in argv[2:] if n not in IMAGES]
    if unknown:
        sys.stderr.write("unknown image(s): %s\n" % " ".join(unknown))
        return 2
    for name, res in build_all(argv[1], argv[2:] or None).items():
        print(name, res["manifest"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
