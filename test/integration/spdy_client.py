"""A minimal SPDY/3.1 client for testing crisp's streaming server (Python's standard library
speaks no SPDY): the HTTP/1.1 upgrade, SYN_STREAM/SYN_REPLY with zlib header blocks keyed by
the SPDY/3 dictionary, DATA frames with FIN, PING/RST/GOAWAY. Written from the SPDY/3 spec,
independently of crisp's C codec, so the tests check crisp against the protocol.
"""
import os
import socket
import struct
import time
import urllib.parse
import zlib

_HERE = os.path.dirname(os.path.abspath(__file__))
DICTIONARY_ADLER32 = 3821447106


def _dictionary():
    """The SPDY/3 header dictionary: spec section 2.6.10.1, read from its generated C table
    (the bytes are a fact of the spec; the checksum below guards their transcription)."""
    path = os.path.join(_HERE, "..", "..", "pkg", "streaming", "spdy-dictionary.c")
    with open(path) as f:
        text = f.read().split("{", 1)[1].split("}", 1)[0]
    data = bytes(int(x, 16) for x in text.replace(",", " ").split())
    assert zlib.adler32(data) == DICTIONARY_ADLER32, "SPDY dictionary checksum mismatch"
    return data


DICTIONARY = _dictionary()

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = \
    1, 2, 3, 4, 6, 7, 8, 9
FIN = 1


class HTTPResult:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def read_head(sock, limit=65536):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed in the response head: %r" % buf)
        buf += chunk
        assert len(buf) < limit
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, rest


def upgrade(url, protocols=("v4.channel.k8s.io",), method="POST", timeout=15, spdy=True):
    """Connects and asks for SPDY/3.1. Returns (HTTPResult, socket or None, leftover bytes);
    the socket is left open only after a 101."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    lines = ["%s %s HTTP/1.1" % (method, u.path), "Host: %s" % u.netloc, "Content-Length: 0"]
    if spdy:
        lines += ["Connection: Upgrade", "Upgrade: SPDY/3.1"]
    lines += ["X-Stream-Protocol-Version: %s" % p for p in protocols]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, rest = read_head(sock)
    if status == 101:
        return HTTPResult(status, headers, b""), sock, rest
    return HTTPResult(status, headers, read_body(sock, headers, rest)), None, b""


def read_body(sock, headers, start):
    """The rest of a response body of Content-Length bytes that begins with START; closes
    the socket."""
    body = start
    want = int(headers.get("content-length", ["0"])[0])
    while len(body) < want:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    sock.close()
    return body


def wait_until(session, cond, timeout, what):
    """Pumps SESSION (its pump(seconds) and eof) until COND holds or the connection ends;
    returns COND's last value, or raises AssertionError after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if session.eof:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting on %s" % what)
        session.pump(left)
    return cond()


class Session:
    """Client side of one SPDY/3.1 session on an upgraded socket."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover
        self.next_id = 1
        self.deflate = zlib.compressobj(zdict=DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=DICTIONARY)
        self.data = {}        # stream id -> bytes received
        self.closed = set()   # stream ids the server finished (FIN or RST)
        self.replied = set()
        self.resets = {}
        self.pings = []
        self.eof = False

    # encoding

    def _headers_block(self, headers):
        plain = struct.pack(">I", len(headers))
        for k, v in headers:
            k, v = k.encode(), v.encode()
            plain += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        return self.deflate.compress(plain) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def _control(self, kind, flags, payload):
        return struct.pack(">HHI", 0x8000 | 3, kind, (flags << 24) | len(payload)) + payload

    def open_stream(self, stream_type, extra=(), fin=False):
        sid = self.next_id
        self.next_id += 2
        payload = struct.pack(">IIH", sid, 0, 0) + self._headers_block(
            [("streamtype", stream_type)] + list(extra))
        self.sock.sendall(self._control(SYN_STREAM, FIN if fin else 0, payload))
        self.data[sid] = b""
        return sid

    def send(self, sid, data, fin=False):
        self.sock.sendall(struct.pack(">II", sid, ((FIN if fin else 0) << 24) | len(data)) + data)

    def ping(self, pid):
        self.sock.sendall(self._control(PING, 0, struct.pack(">I", pid)))

    def send_raw(self, data):
        self.sock.sendall(data)

    # decoding

    def _parse_headers(self, block):
        plain = self.inflate.decompress(block)
        n = struct.unpack(">I", plain[:4])[0]
        off, out = 4, []
        for _ in range(n):
            pair = []
            for _ in range(2):
                ln = struct.unpack(">I", plain[off:off + 4])[0]
                pair.append(plain[off + 4:off + 4 + ln].decode())
                off += 4 + ln
            out.append(tuple(pair))
        return out

    def _frame(self):
        """Parses one frame from the buffer; False if incomplete."""
        if len(self.buf) < 8:
            return False
        w1, w2 = struct.unpack(">II", self.buf[:8])
        length, flags = w2 & 0xffffff, w2 >> 24
        if len(self.buf) < 8 + length:
            return False
        payload, self.buf = self.buf[8:8 + length], self.buf[8 + length:]
        if w1 & 0x80000000:
            version, kind = (w1 >> 16) & 0x7fff, w1 & 0xffff
            assert version == 3, "server sent SPDY version %d" % version
            if kind == SYN_REPLY:
                sid = struct.unpack(">I", payload[:4])[0] & 0x7fffffff
                self._parse_headers(payload[4:])
                self.replied.add(sid)
                if flags & FIN:
                    self.closed.add(sid)
            elif kind == RST_STREAM:
                sid, code = struct.unpack(">II", payload)
                self.resets[sid & 0x7fffffff] = code
                self.closed.add(sid & 0x7fffffff)
            elif kind == PING:
                self.pings.append(struct.unpack(">I", payload)[0])
            elif kind == GOAWAY:
                self.eof = True
            elif kind == HEADERS:
                self._parse_headers(payload[4:])
        else:
            sid = w1 & 0x7fffffff
            self.data[sid] = self.data.get(sid, b"") + payload
            if flags & FIN:
                self.closed.add(sid)
        return True

    def pump(self, timeout):
        """Reads and parses what arrives within TIMEOUT seconds (or until EOF)."""
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        while self._frame():
            pass

    def wait(self, cond, timeout=20):
        return wait_until(self, cond, timeout, "the SPDY session")

    def wait_closed(self, sids, timeout=20):
        """Waits until every stream in SIDS is finished or the connection ends."""
        return self.wait(lambda: all(s in self.closed for s in sids), timeout)

    def close(self):
        self.sock.close()


def exec_session(url, stdin=False, stdout=True, stderr=True, protocols=("v4.channel.k8s.io",)):
    """Upgrades and opens the streams a remotecommand client opens (error first). Returns
    (session, {type: stream id}, negotiated protocol)."""
    res, sock, rest = upgrade(url, protocols)
    assert res.status == 101, "upgrade refused: %d %r" % (res.status, res.body)
    proto = res.headers.get("x-stream-protocol-version", [""])[0]
    s = Session(sock, rest)
    ids = {"error": s.open_stream("error")}
    for name, want in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        if want:
            ids[name] = s.open_stream(name)
    s.wait(lambda: all(i in s.replied for i in ids.values()))
    return s, ids, proto
