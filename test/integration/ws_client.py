"""A WebSocket client for crisp's streaming server: the Kubernetes remotecommand framings over
RFC 6455 (channel.k8s.io and base64.channel.k8s.io, v4 and v5; exec and attach) and
port-forward (v4.channel.k8s.io with the 2-byte port prefix), on Debian's python3-websocket
(websocket-client), which is not our code.  A raw mode (raw_upgrade, frame) speaks the
handshake and frames by hand to send what a well-behaved library never would.

Exec/attach channels: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds 255 (close: its
one data byte is the channel the client closes).  Binary framing: a BINARY message is the
channel byte and the data; base64 framing: a TEXT message is '0'+channel and base64(data).
"""
import base64
import hashlib
import json
import os
import re
import socket
import struct
import time
import urllib.parse

import websocket

from spdy_client import read_body, read_head, wait_until

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4, V4_BASE64 = "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"
V1, V1_BASE64 = "channel.k8s.io", "base64.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
PORT_FORWARD_PROTOCOLS = (V4, V4_BASE64)
# What a Kubernetes client sends at most per message; larger stdin is split.
CHUNK = 32 * 1024


class HandshakeError(Exception):
    def __init__(self, status, headers=None, body=b""):
        super().__init__("WebSocket handshake answered %d: %r" % (status, body))
        self.status, self.headers, self.body = status, headers or {}, body


def ws_url(url, ports=()):
    """The ws:// form of an http:// streaming URL, with ?port=N for each of PORTS."""
    u = urllib.parse.urlsplit(url)
    query = urllib.parse.urlencode([("port", str(p)) for p in ports])
    return urllib.parse.urlunsplit(("ws", u.netloc, u.path, query, ""))


def is_base64(protocol):
    return protocol is not None and "base64" in protocol


class Session:
    """Client side of one channel session (exec, attach or port-forward) on a websocket-client
    connection.  Everything received is kept: data per channel, and the messages in order."""

    def __init__(self, ws, protocol):
        self.ws = ws
        self.protocol = protocol or ""
        self.base64 = is_base64(protocol)
        self.v5 = self.protocol.startswith("v5.")
        self.data = {}        # channel -> bytes received
        self.messages = []    # (channel, bytes) in the order they came
        self.close_code = None  # the code of the server's CLOSE frame
        self.eof = False

    # sending

    def send(self, channel, data=b""):
        if self.base64:
            self.ws.send(chr(ord("0") + channel) + base64.b64encode(data).decode(),
                         websocket.ABNF.OPCODE_TEXT)
        else:
            self.ws.send_binary(bytes([channel]) + data)

    def send_stdin(self, data):
        for off in range(0, max(len(data), 1), CHUNK):
            self.send(STDIN, data[off:off + CHUNK])

    def close_stdin(self):
        """v5 only: the close signal for stdin.  Older protocols have no way to close stdin
        short of closing the connection."""
        if not self.v5:
            raise ValueError("%r cannot close stdin" % self.protocol)
        self.ws.send_binary(bytes([CLOSE, STDIN]))

    def resize(self, width, height):
        self.send(RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    # receiving

    def _decode(self, opcode, payload):
        if self.base64:
            assert opcode == websocket.ABNF.OPCODE_TEXT, "binary message in a base64 session"
            text = payload.decode("ascii")
            assert text and "0" <= text[0] <= "9", "bad base64 channel %r" % text[:1]
            return ord(text[0]) - ord("0"), base64.b64decode(text[1:], validate=True)
        assert opcode == websocket.ABNF.OPCODE_BINARY, "text message in a binary session"
        assert len(payload) >= 1, "empty binary message"
        return payload[0], bytes(payload[1:])

    def pump(self, timeout):
        """Receives one message (or the close) within TIMEOUT seconds; False on timeout."""
        if self.eof:
            return False
        self.ws.settimeout(max(timeout, 0.001))
        try:
            opcode, payload = self.ws.recv_data(control_frame=True)
        except websocket.WebSocketTimeoutException:
            return False
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            self.eof = True
            return True
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            # websocket-client has already answered the CLOSE.
            self.close_code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
            self.eof = True
        elif opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT):
            channel, data = self._decode(opcode, payload)
            self.messages.append((channel, data))
            self.data[channel] = self.data.get(channel, b"") + data
        return True

    def wait(self, cond, timeout=20, what="the WebSocket session"):
        """Waits until COND holds; raises AssertionError on timeout or if the connection
        ends first."""
        if not wait_until(self, cond, timeout, what):
            raise AssertionError("the connection ended before %s; got %r" % (what, self.data))
        return True

    def wait_closed(self, timeout=20):
        """Waits for the server's CLOSE (or the end of the connection); returns its code."""
        wait_until(self, lambda: False, timeout, "the server to close")
        return self.close_code

    def channel(self, ch):
        return self.data.get(ch, b"")

    @property
    def stdout(self):
        return self.channel(STDOUT)

    @property
    def stderr(self):
        return self.channel(STDERR)

    @property
    def error(self):
        return self.channel(ERROR)

    def status(self):
        """The metav1.Status of a v4/v5 session (parsed from the error channel)."""
        return json.loads(self.error)

    def exit_code(self):
        return exit_code(self.protocol, self.error)

    def close(self):
        try:
            self.ws.close(timeout=1)
        except (OSError, websocket.WebSocketException):
            pass
        self.ws.shutdown()


def exit_code(protocol, error):
    """The exit code a session reported on its error channel: a metav1.Status for v4/v5, for
    older versions nothing (success) or a failure text ending in the code."""
    if protocol.startswith(("v4.", "v5.")):
        status = json.loads(error)
        if status["status"] == "Success":
            return 0
        assert status["reason"] == "NonZeroExitCode", status
        causes = status["details"]["causes"]
        assert [c["reason"] for c in causes] == ["ExitCode"], status
        return int(causes[0]["message"])
    if error == b"":
        return 0
    m = re.search(rb"exit code:? ?(\d+)$", error.strip())
    assert m, "no exit code in %r" % error
    return int(m.group(1))


def connect(url, protocols=(V5,), timeout=20, ports=()):
    """Opens a WebSocket to the http:// streaming URL offering PROTOCOLS (none: an empty
    tuple).  Returns a Session; raises HandshakeError for anything but 101."""
    try:
        ws = websocket.create_connection(ws_url(url, ports), timeout=timeout,
                                         subprotocols=list(protocols) or None,
                                         skip_utf8_validation=True, enable_multithread=True)
    except websocket.WebSocketBadStatusException as e:
        raise HandshakeError(e.status_code, e.resp_headers) from None
    return Session(ws, ws.getsubprotocol())


def exec_session(url, protocols=(V5,), timeout=20):
    """connect(), named for what the tests do with it."""
    return connect(url, protocols, timeout)


# ---- port-forward ----

class PortForward(Session):
    """A port-forward session: port i (in the order given) has data channel 2i and error
    channel 2i+1; the server starts both with the port as 2 bytes little-endian."""

    def __init__(self, ws, protocol, ports):
        super().__init__(ws, protocol)
        self.ports = list(ports)

    def wait_prefixes(self, timeout=20):
        """Waits for the port prefix on both channels of every port and checks it."""
        want = range(2 * len(self.ports))
        self.wait(lambda: all(len(self.channel(ch)) >= 2 for ch in want), timeout,
                  what="the port prefixes")
        for i, port in enumerate(self.ports):
            for ch in (2 * i, 2 * i + 1):
                got = struct.unpack("<H", self.channel(ch)[:2])[0]
                assert got == port, "channel %d starts with port %d, not %d" % (ch, got, port)

    def send_to(self, index, data):
        for off in range(0, max(len(data), 1), CHUNK):
            self.send(2 * index, data[off:off + CHUNK])

    def received(self, index):
        return self.channel(2 * index)[2:]

    def port_error(self, index):
        return self.channel(2 * index + 1)[2:]


def port_forward(url, ports, protocols=(V4,), query=True, timeout=20):
    """Opens a port-forward WebSocket for PORTS (sent as ?port= when QUERY, else the ports
    of the CRI request must be these)."""
    try:
        ws = websocket.create_connection(ws_url(url, ports if query else ()), timeout=timeout,
                                         subprotocols=list(protocols) or None,
                                         skip_utf8_validation=True, enable_multithread=True)
    except websocket.WebSocketBadStatusException as e:
        raise HandshakeError(e.status_code, e.resp_headers) from None
    return PortForward(ws, ws.getsubprotocol(), ports)


# ---- raw mode: the handshake and frames by hand ----

def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_for(key):
    """The Sec-WebSocket-Accept a server must answer to KEY (RFC 6455 section 4.2.2)."""
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    return base64.b64encode(digest).decode()


AUTO = object()


def raw_upgrade(url, protocols=(V5,), key=AUTO, version="13", upgrade="websocket",
                method="GET", extra=(), ports=(), timeout=15):
    """Sends a WebSocket handshake by hand; KEY (a fresh one by default), VERSION or UPGRADE
    None leave that header out.  A 101 must carry the right Sec-WebSocket-Accept.
    Returns (status, {lowercase name: [values]}, body or leftover bytes, socket or None): the
    socket stays open only after a 101."""
    u = urllib.parse.urlsplit(ws_url(url, ports))
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    path = u.path + ("?" + u.query if u.query else "")
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: %s" % u.netloc]
    if upgrade is not None:
        lines += ["Connection: Upgrade", "Upgrade: %s" % upgrade]
    if key is AUTO:
        key = new_key()
    if key is not None:
        lines.append("Sec-WebSocket-Key: %s" % key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: %s" % version)
    if protocols:
        lines.append("Sec-WebSocket-Protocol: %s" % ", ".join(protocols))
    lines += list(extra)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, headers, rest = read_head(sock)
    if status == 101:
        assert headers.get("sec-websocket-accept") == [accept_for(key)], headers
        return status, headers, rest, sock
    return status, headers, read_body(sock, headers, rest), None


def frame(opcode, payload=b"", mask=True, fin=True, rsv=0, length=None, mask_key=None):
    """One client frame; LENGTH overrides the length field (to lie about it)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = mask_key or os.urandom(4)
    return head + key + masked(key, payload)


def masked(key, data):
    n = len(data)
    if n == 0:
        return b""
    keys = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ keys).to_bytes(n, "big")


def channel_frame(channel, data, **kw):
    """A binary channel message as one masked frame."""
    return frame(websocket.ABNF.OPCODE_BINARY, bytes([channel]) + data, **kw)


def read_until_eof(sock, timeout=15):
    """Reads what the server sends until it closes the connection; returns the bytes, or
    raises AssertionError if the connection is still open after TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("the server kept the connection open (%d bytes read)"
                                 % len(got))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk


def server_frames(data):
    """[(opcode, payload)] of the unmasked server frames in DATA (a trailing partial frame is
    left out)."""
    out, off = [], 0
    while off + 2 <= len(data):
        b1, b2 = data[off], data[off + 1]
        assert not b2 & 0x80, "the server masked a frame"
        n, off2 = b2 & 0x7f, off + 2
        if n == 126:
            n, off2 = struct.unpack(">H", data[off2:off2 + 2])[0], off2 + 2
        elif n == 127:
            n, off2 = struct.unpack(">Q", data[off2:off2 + 8])[0], off2 + 8
        if off2 + n > len(data):
            break
        out.append((b1 & 0x0f, data[off2:off2 + n]))
        off = off2 + n
    return out
