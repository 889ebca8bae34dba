"""A real local OCI registry for crisp's integration tests.

Owns: starting/stopping Debian's ``docker-registry`` (distribution 2.8) on
127.0.0.1, optional htpasswd basic auth, optional token auth backed by a small
token server of our own, pushing OCI layouts (skopeo, or our own uploader for
content skopeo would refuse), and reading the registry back over its HTTP API.

Typical use (from a conftest fixture)::

    from registry_harness import Registry, build_images

    images = build_images(tmp_path / "images")          # {name: build result}
    with Registry() as reg:                               # anonymous
        reg.push(images["busybox"]["dir"], "latest", "test/busybox", "latest")
        image_ref = reg.host + "/test/busybox:latest"     # e.g. 127.0.0.1:41234/...

    Registry(auth="basic", users={"alice": "secret"})     # htpasswd, bcrypt
    Registry(auth="token", users={"alice": "secret"})     # Bearer tokens (RS256 JWT)
    Registry(auth="token", users={"alice": "s"}, anonymous_token=True)
                                                          # tokens for anyone

Registry(...)
    Starts at construction; ``stop()`` (also ``__exit__``) ends the process it
    started (by its pid), stops the token server and removes the temp dir.
    ``host`` is "127.0.0.1:PORT", ``url`` is "http://127.0.0.1:PORT".
    ``creds`` is "user:password" of the first user (None without auth); the
    harness's own HTTP calls authenticate with it.  ``token_realm`` and
    ``tokens_issued`` (list of {"user", "service", "scopes"}) are set for
    token auth.  ``log()`` returns the registry's log text (includes the access
    log, so tests can count requests).

Pushing
    push(layout_dir, tag_ref, name, tag, zstd=False, creds=None, all_platforms=False)
        skopeo copy from ``oci:layout_dir:tag_ref``; returns the manifest digest.
        ``all_platforms`` pushes an image index and all its manifests.
    push_layout(layout_dir, tag_ref, name, ref)
        our own uploader: walks the descriptors under tag_ref (index or
        manifest), uploads blobs then manifests byte-for-byte; returns digest.
    put_blob(name, data) -> digest;  put_manifest(name, ref, body, media_type) -> digest
    delete_blob(name, digest);  delete_manifest(name, digest)
    blob_path(digest);  corrupt_blob(digest, data)  -- overwrite the stored blob
        so the registry serves bytes that do not match their digest.

Reading
    catalog(), list_tags(name), get_manifest(name, ref, accept=None) ->
    (body, media_type, digest), get_blob(name, digest) -> bytes,
    request(method, path, ...) (authenticated) and
    raw_request(method, path, headers=None, data=None) -> (status, headers, body)
    (no authentication, never raises on HTTP errors).
"""

import atexit
import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO_BIN = "/usr/bin/skopeo"
HTPASSWD_BIN = "/usr/bin/htpasswd"
OPENSSL_BIN = "/usr/bin/openssl"

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "contrib", "test-images"))

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
ACCEPT_ALL = ", ".join([MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST])
INDEX_TYPES = (MT_OCI_INDEX, MT_DOCKER_LIST)

_live = weakref.WeakSet()


def import_builder():
    """Import contrib/test-images/build.py as a module."""
    if IMAGES_DIR not in sys.path:
        sys.path.insert(0, IMAGES_DIR)
    import build  # noqa: E402  pylint: disable=import-outside-toplevel

    return build


def build_images(out_dir, names=None):
    """Build the stock test images into OUT_DIR/<name>.  Returns
    {name: build result + {"dir": layout path}}."""
    build = import_builder()
    out_dir = str(out_dir)
    results = build.build_all(out_dir, names)
    for name, res in results.items():
        res["dir"] = os.path.join(out_dir, name)
    return results


class HarnessError(RuntimeError):
    pass


def free_port():
    """A port nobody listens on right now (it may be taken before we use it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- token auth ----------------------------------------------------------------


class _TokenSigner:
    """RS256 JWT signing with a self-signed cert whose chain goes in ``x5c``
    (distribution 2.8 verifies the chain against ``rootcertbundle``)."""

    def __init__(self, workdir):
        self.key_path = os.path.join(workdir, "token.key")
        self.cert_path = os.path.join(workdir, "token.crt")
        subprocess.run(
            [OPENSSL_BIN, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
             "-days", "30", "-subj", "/CN=crisp-test-token-issuer",
             "-keyout", self.key_path, "-out", self.cert_path],
            check=True, capture_output=True)
        der = subprocess.run([OPENSSL_BIN, "x509", "-in", self.cert_path, "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = [base64.b64encode(der).decode()]
        self._key = None
        try:
            from cryptography.hazmat.primitives import serialization  # noqa: E402

            with open(self.key_path, "rb") as f:
                self._key = serialization.load_pem_private_key(f.read(), password=None)
        except ImportError:
            pass  # fall back to the openssl CLI below

    def _sign(self, data):
        if self._key is not None:
            from cryptography.hazmat.primitives import hashes  # noqa: E402
            from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return subprocess.run([OPENSSL_BIN, "dgst", "-sha256", "-sign", self.key_path],
                              input=data, check=True, capture_output=True).stdout

    def jwt(self, claims):
        header = {"alg": "RS256", "typ": "JWT", "x5c": self.x5c}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        return signing_input + "." + _b64url(self._sign(signing_input.encode()))


def _parse_scope(scope):
    # "repository:name/with/slashes:pull,push" (the name never contains ':'
    # here since we do not use registry hosts with ports inside names).
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenServer:
    """``GET /token?service=..&scope=..`` → ``{"token", "access_token", ...}``.

    Grants whatever scopes are asked to a user with valid basic credentials;
    anonymous callers get a token only with ``anonymous=True``.  Wrong
    credentials always get 401."""

    def __init__(self, workdir, service, issuer, users, anonymous=False, ttl=300):
        self.signer = _TokenSigner(workdir)
        self.service, self.issuer, self.users = service, issuer, dict(users or {})
        self.anonymous, self.ttl = anonymous, ttl
        self.issued = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server naming)
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True,
                                       name="crisp-token-server")
        self.thread.start()

    def _user(self, req):
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None, False
        ok = user in self.users and secrets.compare_digest(self.users[user], password)
        return (user if ok else None), ok

    def _handle(self, req):
        url = urllib.parse.urlsplit(req.path)
        if url.path != "/token":
            req.send_error(404)
            return
        user, ok = self._user(req)
        if not ok or (user is None and not self.anonymous):
            req.send_response(401)
            req.send_header("WWW-Authenticate", 'Basic realm="crisp-test-token"')
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [self.service])[0]
        scopes = query.get("scope", [])
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user or "", "aud": service,
            "exp": now + self.ttl, "nbf": now - 10, "iat": now - 10,
            "jti": secrets.token_hex(16),
            "access": [_parse_scope(one) for s in scopes for one in s.split(" ") if one],
        }
        token = self.signer.jwt(claims)
        self.issued.append({"user": user, "service": service, "scopes": scopes})
        body = json.dumps({"token": token, "access_token": token, "expires_in": self.ttl,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                      time.gmtime(now))}).encode()
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --- the registry --------------------------------------------------------------


class Registry:
    SERVICE = "crisp-test-registry"
    ISSUER = "crisp-test-issuer"

    def __init__(self, auth=None, users=None, anonymous_token=False, start_timeout=10.0):
        if auth not in (None, "basic", "token"):
            raise ValueError("auth must be None, 'basic' or 'token'")
        if auth and not users:
            raise ValueError("auth needs users={name: password}")
        self.auth, self.users = auth, dict(users or {})
        first = next(iter(self.users.items()), None)
        self.creds = "%s:%s" % first if (auth and first) else None
        self.proc, self.port, self.token_server = None, None, None
        self._tokens = {}
        self.workdir = tempfile.mkdtemp(prefix="crisp-registry-")
        self.storage = os.path.join(self.workdir, "storage")
        self.log_path = os.path.join(self.workdir, "registry.log")
        _live.add(self)
        try:
            self._prepare_auth(anonymous_token)
            self._start(start_timeout)
        except BaseException:
            self.stop()
            raise

    # context manager
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "http://" + self.host

    @property
    def token_realm(self):
        return self.token_server.realm if self.token_server else None

    @property
    def tokens_issued(self):
        return self.token_server.issued if self.token_server else []

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- lifecycle --

    def _prepare_auth(self, anonymous_token):
        if self.auth == "basic":
            path = os.path.join(self.workdir, "htpasswd")
            for i, (user, password) in enumerate(self.users.items()):
                flags = "-bBc" if i == 0 else "-bB"
                subprocess.run([HTPASSWD_BIN, flags, path, user, password], check=True,
                               capture_output=True)
            self._auth_yaml = ("auth:\n  htpasswd:\n    realm: crisp-test\n"
                               "    path: %s\n" % path)
        elif self.auth == "token":
            self.token_server = TokenServer(self.workdir, self.SERVICE, self.ISSUER, self.users,
                                            anonymous=anonymous_token)
            self._auth_yaml = (
                "auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n"
                "    rootcertbundle: %s\n" % (self.token_server.realm, self.SERVICE,
                                              self.ISSUER, self.token_server.signer.cert_path))
        else:
            self._auth_yaml = ""

    def _write_config(self, port):
        path = os.path.join(self.workdir, "config.yml")
        with open(path, "w") as f:
            f.write(
                "version: 0.1\n"
                "log:\n  level: info\n  formatter: text\n"
                "storage:\n  filesystem:\n    rootdirectory: %s\n"
                "  delete:\n    enabled: true\n"
                "  maintenance:\n    uploadpurging:\n      enabled: false\n"
                "http:\n  addr: 127.0.0.1:%d\n  secret: crisp-test-not-secret\n"
                % (self.storage, port))
            f.write(self._auth_yaml)
        return path

    def _start(self, timeout):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "OTEL_"))}
        for _attempt in range(5):
            port = free_port()
            config = self._write_config(port)
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen([REGISTRY_BIN, "serve", config],
                                             stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
            self.port = port
            if self._wait_ready(timeout):
                return
            text = self.log()
            self._reap()
            if "address already in use" not in text:
                raise HarnessError("docker-registry did not start:\n" + text[-3000:])
        raise HarnessError("docker-registry: no free port after 5 attempts")

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _, _ = self.raw_request("GET", "/v2/", timeout=1)
                if status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _reap(self):
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # by the pid we started
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self):
        self._reap()
        if self.token_server:
            self.token_server.stop()
            self.token_server = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        _live.discard(self)

    # -- HTTP --

    def raw_request(self, method, path, headers=None, data=None, timeout=10):
        """One unauthenticated request; returns (status, headers, body)."""
        url = path if path.startswith("http") else self.url + path
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            body = e.read()
            e.close()
            return e.code, e.headers, body

    def fetch_token(self, challenge, creds=None):
        """Follow a ``Bearer realm=..,service=..,scope=..`` challenge."""
        params = dict(_parse_challenge(challenge))
        query = {"service": params.get("service", "")}
        if params.get("scope"):
            query["scope"] = params["scope"]
        headers = {}
        creds = creds if creds is not None else self.creds
        if creds:
            headers["Authorization"] = "Basic " + base64.b64encode(creds.encode()).decode()
        status, _, body = self.raw_request(
            "GET", params["realm"] + "?" + urllib.parse.urlencode(query), headers=headers)
        if status != 200:
            raise HarnessError("token server answered %d" % status)
        return json.loads(body)["token"]

    def request(self, method, path, headers=None, data=None, ok=(200, 201, 202, 204)):
        """An authenticated request (basic or bearer as the registry asks);
        raises HarnessError unless the status is in OK."""
        headers = dict(headers or {})
        if self.auth == "basic":
            headers["Authorization"] = "Basic " + base64.b64encode(self.creds.encode()).decode()
        status, rhdrs, body = self.raw_request(method, path, headers, data)
        challenge = rhdrs.get("WWW-Authenticate", "") if status == 401 else ""
        if challenge.startswith("Bearer "):
            headers["Authorization"] = "Bearer " + self.fetch_token(challenge)
            status, rhdrs, body = self.raw_request(method, path, headers, data)
        if status not in ok:
            raise HarnessError("%s %s: HTTP %d %s" % (method, path, status, body[:500]))
        return status, rhdrs, body

    # -- reading --

    def catalog(self):
        return json.loads(self.request("GET", "/v2/_catalog")[2])["repositories"]

    def list_tags(self, name):
        return json.loads(self.request("GET", "/v2/%s/tags/list" % name)[2])["tags"] or []

    def get_manifest(self, name, ref, accept=ACCEPT_ALL):
        _, hdrs, body = self.request("GET", "/v2/%s/manifests/%s" % (name, ref),
                                     headers={"Accept": accept})
        return body, hdrs.get("Content-Type"), hdrs.get("Docker-Content-Digest")

    def get_blob(self, name, digest):
        return self.request("GET", "/v2/%s/blobs/%s" % (name, digest))[2]

    # -- writing --

    def push(self, layout_dir, tag_ref, name, tag, zstd=False, creds=None, all_platforms=False):
        """skopeo copy oci:LAYOUT_DIR:TAG_REF → NAME:TAG; returns the digest.

        With zstd, layers the registry already holds (e.g. pushed gzip'd to
        another repository) are reused as they are: push to a fresh registry
        when every layer must be zstd."""
        digest_file = os.path.join(self.workdir, "push-digest")
        cmd = [SKOPEO_BIN, "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
               "--digestfile", digest_file]
        creds = creds if creds is not None else self.creds
        cmd += ["--dest-creds", creds] if creds else ["--dest-no-creds"]
        if zstd:
            cmd += ["--dest-compress-format", "zstd"]
        if all_platforms:
            cmd += ["--all"]
        cmd += ["oci:%s:%s" % (layout_dir, tag_ref), "docker://%s/%s:%s" % (self.host, name, tag)]
        # A private auth file keeps the host's credentials out of it.
        env = dict(os.environ, REGISTRY_AUTH_FILE=os.path.join(self.workdir, "auth.json"))
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        if res.returncode != 0:
            raise HarnessError("skopeo push failed: %s\n%s" % (" ".join(cmd), res.stderr))
        with open(digest_file) as f:
            return f.read().strip()

    def put_blob(self, name, data):
        import hashlib  # noqa: E402

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        status, _, _ = self._head_or_get("/v2/%s/blobs/%s" % (name, digest))
        if status == 200:
            return digest
        _, hdrs, _ = self.request("POST", "/v2/%s/blobs/uploads/" % name, data=b"")
        location = urllib.parse.urljoin(self.url + "/", hdrs["Location"])
        sep = "&" if "?" in location else "?"
        self.request("PUT", location + sep + urllib.parse.urlencode({"digest": digest}),
                     headers={"Content-Type": "application/octet-stream"}, data=data)
        return digest

    def _head_or_get(self, path):
        try:
            return self.request("HEAD", path, ok=(200,))
        except HarnessError:
            return 404, {}, b""

    def put_manifest(self, name, ref, body, media_type):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        _, hdrs, _ = self.request("PUT", "/v2/%s/manifests/%s" % (name, ref),
                                  headers={"Content-Type": media_type}, data=body)
        return hdrs.get("Docker-Content-Digest")

    def delete_manifest(self, name, digest):
        self.request("DELETE", "/v2/%s/manifests/%s" % (name, digest))

    def delete_blob(self, name, digest):
        self.request("DELETE", "/v2/%s/blobs/%s" % (name, digest))

    def push_layout(self, layout_dir, tag_ref, name, ref):
        """Upload everything TAG_REF references in the OCI layout, unchanged
        (no validation, no recompression); returns the top manifest digest."""
        with open(os.path.join(layout_dir, "index.json")) as f:
            index = json.load(f)
        for desc in index["manifests"]:
            if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag_ref:
                break
        else:
            raise HarnessError("%s: no tag %s" % (layout_dir, tag_ref))

        def blob(digest):
            with open(os.path.join(layout_dir, "blobs", *digest.split(":", 1)), "rb") as f:
                return f.read()

        def upload(desc, ref):
            body = blob(desc["digest"])
            doc = json.loads(body)
            if desc["mediaType"] in INDEX_TYPES:
                for child in doc["manifests"]:
                    upload(child, child["digest"])
            else:
                for b in [doc["config"]] + doc["layers"]:
                    self.put_blob(name, blob(b["digest"]))
            return self.put_manifest(name, ref, body, desc["mediaType"])

        return upload(desc, ref)

    def blob_path(self, digest):
        algo, hexd = digest.split(":", 1)
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", algo, hexd[:2],
                            hexd, "data")

    def corrupt_blob(self, digest, data):
        """Replace the stored bytes of DIGEST: the registry then serves DATA
        under a digest it does not match."""
        with open(self.blob_path(digest), "wb") as f:
            f.write(data)


def _parse_challenge(challenge):
    """Yield (key, value) pairs of a ``Bearer k="v",k2="v2"`` header."""
    rest = challenge.split(" ", 1)[1] if " " in challenge else ""
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip(" ,")
        if eq + 1 < len(rest) and rest[eq + 1] == '"':
            end = rest.find('"', eq + 2)
            end = len(rest) if end < 0 else end
            yield key, rest[eq + 2:end]
            i = end + 1
        else:
            end = rest.find(",", eq + 1)
            end = len(rest) if end < 0 else end
            yield key, rest[eq + 1:end]
            i = end
        i += 1 if i < len(rest) and rest[i] == "," else 0


@atexit.register
def _stop_leftovers():
    for reg in list(_live):
        reg.stop()
