"""Streaming sessions as issue 12 specifies them: exec and attach over every remotecommand
version of SPDY/3.1 and of WebSocket, sessions that outlive crisp (kill -9, a SIGTERM restart,
a switch of binaries) because the container's monitor serves them, the attach stdin rules
(stdin_once), port-forward over WebSocket and SPDY, hostile clients that must end only their
own session, and the bounds of the token store.

Clients: spdy_client.py (our SPDY/3.1 client, written from the spec) and ws_client.py (on
Debian's python3-websocket).  SpdyClient below gives the SPDY session the methods of
ws_client.Session, so one test body drives either transport.
"""
import json
import os
import re
import shutil
import socket
import struct
import threading
import time

import grpc
import pytest

import ws_client
from container_harness import (SLEEPER, alive, cenv, finish_env, make_env,  # noqa: F401
                               monitors, pids_with_argv, push_extra_images, read_cmdline,
                               rpc_error, wait_for)
from cri_client import pb
from crisp_daemon import BUILDDIR, CRISP
from spdy_client import exec_session, upgrade
from test_streaming import (attach_url, exec_url, pfenv, pod_with_own_netns,  # noqa: F401
                            port_forward_session, open_pair, reply_server, running)
from ws_client import (STDERR, STDIN, STDOUT, V1, V1_BASE64, V4, V4_BASE64, V5,
                       HandshakeError)

MiB = 1024 * 1024
SPDY_V5, SPDY_V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
SPDY_VERSIONS = [SPDY_V5, SPDY_V4, "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"]
# None: no Sec-WebSocket-Protocol at all, which is binary channel.k8s.io.
WS_VERSIONS = [V5, V4, V4_BASE64, V1, V1_BASE64, None]
TRANSPORTS = ["spdy", "ws"]

# Reads one line, answers on stdout and stderr, fails with 3.
LINE_CMD = ["sh", "-c", 'read l; echo "out:$l"; echo "err:$l" >&2; exit 3']
# Echoes each line on both streams until stdin ends.
LOOP = ["sh", "-c", 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo bye']
ECHO = ["sh", "-c", 'while read l; do echo "got:$l"; done']


class SpdyClient:
    """spdy_client's exec session behind the methods of ws_client.Session."""

    def __init__(self, url, stdin=False, stdout=True, stderr=True, protocol=SPDY_V4):
        self.s, self.ids, self.protocol = exec_session(url, stdin=stdin, stdout=stdout,
                                                       stderr=stderr, protocols=(protocol,))
        self.resize_id = None

    def _stream(self, name):
        return self.s.data.get(self.ids[name], b"") if name in self.ids else b""

    @property
    def stdout(self):
        return self._stream("stdout")

    @property
    def stderr(self):
        return self._stream("stderr")

    @property
    def error(self):
        return self._stream("error")

    @property
    def eof(self):
        return self.s.eof

    def send_stdin(self, data):
        for off in range(0, max(len(data), 1), 32768):
            self.s.send(self.ids["stdin"], data[off:off + 32768])

    def close_stdin(self):
        self.s.send(self.ids["stdin"], b"", fin=True)

    def resize(self, width, height):
        if self.resize_id is None:
            self.resize_id = self.s.open_stream("resize")
            self.s.wait(lambda: self.resize_id in self.s.replied)
        self.s.send(self.resize_id, json.dumps({"Width": width, "Height": height}).encode())

    def wait(self, cond, timeout=20, what="the SPDY session"):
        """Waits until COND holds; raises AssertionError on timeout or if the connection
        ends first."""
        if not self.s.wait(cond, timeout):
            raise AssertionError("the connection ended before %s; got %r" % (what, self.s.data))
        return True

    def wait_closed(self, timeout=20):
        self.s.wait_closed([self.ids[k] for k in ("error", "stdout", "stderr") if k in self.ids],
                           timeout)

    def exit_code(self):
        return ws_client.exit_code(self.protocol, self.error)

    def close(self):
        self.s.close()


def open_client(transport, url, stdin=False, stdout=True, stderr=True, protocol=None):
    """An exec/attach session on URL over TRANSPORT ("spdy": v4 unless PROTOCOL, "ws": v5
    unless PROTOCOL).  Over WebSocket the streams are those of the RPC."""
    if transport == "spdy":
        return SpdyClient(url, stdin, stdout, stderr, protocol or SPDY_V4)
    return ws_client.exec_session(url, (protocol or V5,))


def can_close_stdin(client):
    return isinstance(client, SpdyClient) or client.v5


def versioned(protocol):
    return bool(protocol) and protocol.startswith(("v4.", "v5."))


def check_failure(protocol, error, code):
    """The error stream of a command that exited with CODE, as PROTOCOL reports it."""
    if versioned(protocol):
        status = json.loads(error)
        assert (status["status"], status["reason"]) == ("Failure", "NonZeroExitCode"), status
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": str(code)}]
    else:
        assert b"non-zero exit code" in error, error
        assert ws_client.exit_code(protocol or "", error) == code


def check_success(protocol, error):
    if versioned(protocol):
        assert json.loads(error)["status"] == "Success", error
    else:
        assert error == b""


def attach_target(env, command, stdin_once=False, tty=False, name="attached"):
    """A running container with stdin open (and a tty if asked)."""
    pod = env.run_pod()
    cfg = env.config(name, command=command)
    cfg.stdin = True
    cfg.stdin_once = stdin_once
    cfg.tty = tty
    cid = env.create(pod, config=cfg)
    env.start(cid)
    return cid


def typed(client, word, n):
    """Types a shell line and waits for its answer (the tty echo of the line itself does not
    contain the answer, so the wait sees the shell's work)."""
    client.send_stdin(b"echo %s-$((%d*1000+1))\n" % (word.encode(), n))
    want = b"%s-%d" % (word.encode(), n * 1000 + 1)
    client.wait(lambda: want in client.stdout, 20, what="the answer %r" % want)


def bring_down(env, how):
    if how == "kill9":
        env.d.kill9()
    else:
        assert env.d.stop() == 0


def the_monitor(cid):
    mons = monitors(cid)
    assert len(mons) == 1, mons
    return mons[0]


# ---- exec over every protocol ----

@pytest.mark.parametrize("protocol", SPDY_VERSIONS)
def test_spdy_exec_each_version(cenv, protocol):
    cid = running(cenv)
    c = SpdyClient(exec_url(cenv, cid, LINE_CMD, stdin=True), stdin=True, protocol=protocol)
    assert c.protocol == protocol
    c.send_stdin(b"hello\n")
    c.wait_closed()
    assert (c.stdout, c.stderr) == (b"out:hello\n", b"err:hello\n")
    check_failure(protocol, c.error, 3)
    c.close()
    c = SpdyClient(exec_url(cenv, cid, ["echo", "fine"]), protocol=protocol)
    c.wait_closed()
    assert c.stdout == b"fine\n"
    check_success(protocol, c.error)
    c.close()


@pytest.mark.parametrize("protocol", WS_VERSIONS, ids=lambda p: p or "none")
def test_ws_exec_each_version(cenv, protocol):
    cid = running(cenv)
    s = ws_client.exec_session(exec_url(cenv, cid, LINE_CMD, stdin=True),
                               (protocol,) if protocol else ())
    assert s.protocol == (protocol or "")
    s.wait(lambda: s.messages, what="the first message")
    assert s.messages[0] == (STDOUT, b""), "the session does not start with an empty stdout"
    s.send_stdin(b"hello\n")
    assert s.wait_closed() == 1000
    assert (s.stdout, s.stderr) == (b"out:hello\n", b"err:hello\n")
    check_failure(protocol, s.error, 3)
    s.close()
    s = ws_client.exec_session(exec_url(cenv, cid, ["echo", "fine"]),
                               (protocol,) if protocol else ())
    assert s.wait_closed() == 1000
    assert s.stdout == b"fine\n"
    check_success(protocol, s.error)
    s.close()


def test_ws_exec_without_stdout_starts_on_stderr(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["sh", "-c", "echo e >&2"], stdout=False)
    s = ws_client.exec_session(url, (V5,))
    assert s.wait_closed() == 1000
    assert s.messages[0] == (STDERR, b"")
    assert s.stderr == b"e\n" and STDOUT not in s.data
    assert s.status()["status"] == "Success"
    s.close()


def test_ws_v5_close_stdin_ends_the_command_and_nothing_is_lost(cenv):
    cid = running(cenv)
    s = ws_client.exec_session(exec_url(cenv, cid, ["cat"], stdin=True, stderr=False), (V5,))
    payload = bytes(range(256)) * (8 * 1024)  # 2 MiB, read back while it is still sent

    def feed():
        s.send_stdin(payload)
        s.close_stdin()
    t = threading.Thread(target=feed)
    t.start()
    assert s.wait_closed(60) == 1000
    t.join(30)
    assert s.stdout == payload
    assert s.exit_code() == 0
    s.close()


@pytest.mark.parametrize("protocol", [V5, V4_BASE64])
def test_ws_exec_tty_resize_and_exit_code(cenv, protocol):
    cid = running(cenv)
    cmd = ["sh", "-c", "read x; stty size; [ -t 0 ] && echo is-a-tty; exit 3"]
    url = exec_url(cenv, cid, cmd, stdin=True, stderr=False, tty=True)
    s = ws_client.exec_session(url, (protocol,))
    s.resize(123, 45)
    s.send_stdin(b"go\n")
    assert s.wait_closed() == 1000
    assert b"45 123\r\n" in s.stdout and b"is-a-tty\r\n" in s.stdout, s.stdout
    assert s.exit_code() == 3
    s.close()


def test_ws_bad_handshakes(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["echo", "finally"])
    base = url.rsplit("/", 2)[0]
    # Refusals that do not present the token leave it usable.
    assert ws_client.raw_upgrade(url, key=None)[0] == 400
    assert ws_client.raw_upgrade(url, key="c2hvcnQ=")[0] == 400  # not 16 bytes
    assert ws_client.raw_upgrade(url, version="8")[0] == 400
    assert ws_client.raw_upgrade(url, version=None)[0] == 400
    assert ws_client.raw_upgrade(url, upgrade="h2c")[0] == 400
    assert ws_client.raw_upgrade(url, upgrade=None)[0] == 400
    assert ws_client.raw_upgrade(base + "/exec/" + "0" * 64)[0] == 404
    assert ws_client.raw_upgrade(base + "/nothing/here")[0] == 404
    status, _, _, sock = ws_client.raw_upgrade(
        url, extra=["X-Filler: " + "a" * 9000])
    assert status == 431
    s = ws_client.exec_session(url, (V5,))
    assert s.wait_closed() == 1000
    assert s.stdout == b"finally\n"
    s.close()
    # No protocol in common: 403 (the token was presented, so it is spent).
    url = exec_url(cenv, cid, ["true"])
    assert ws_client.raw_upgrade(url, protocols=("v99.channel.k8s.io",))[0] == 403
    assert ws_client.raw_upgrade(url)[0] == 404


def test_ws_503_when_the_monitor_cannot_take_the_session(cenv):
    cid = running(cenv)
    mon = the_monitor(cid)
    url = exec_url(cenv, cid, ["true"])
    cenv.stop(cid, timeout=0)
    wait_for(lambda: not alive(mon), 20, what="the monitor to exit")
    status, _, body, _ = ws_client.raw_upgrade(url)
    assert status == 503 and body.strip(), (status, body)


# ---- attach ----

ATTACH_CLIENTS = [("spdy", SPDY_V4), ("ws", V5), ("ws", V4_BASE64), ("ws", V1_BASE64)]


@pytest.mark.parametrize("transport,protocol", ATTACH_CLIENTS,
                         ids=["-".join(c) for c in ATTACH_CLIENTS])
def test_attach_each_protocol(cenv, transport, protocol):
    cid = attach_target(cenv, LOOP, stdin_once=True)
    c = open_client(transport, attach_url(cenv, cid, stdin=True), stdin=True, protocol=protocol)
    if transport == "ws":
        c.wait(lambda: c.messages, what="the first message")
        assert c.messages[0] == (STDOUT, b"")
    c.send_stdin(b"one\n")
    c.wait(lambda: b"out:one\n" in c.stdout and b"err:one\n" in c.stderr)
    if can_close_stdin(c):
        # stdin_once: the first client to close stdin closes the container's.
        c.close_stdin()
        c.wait_closed()
        assert c.stdout == b"out:one\nbye\n"
        check_success(protocol, c.error)
    c.close()  # without a close signal, leaving is what closes it (stdin_once)
    assert cenv.wait_exit(cid).exit_code == 0


def attach_and_echo(env, cid, transport, line):
    """An attach client (stdin and stdout) to a container running `cat`, after LINE came
    back."""
    c = open_client(transport, attach_url(env, cid, stdin=True, stderr=False), stdin=True,
                    stderr=False)
    c.send_stdin(line)
    c.wait(lambda: line in c.stdout, what="%r back from cat" % line)
    return c


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_close_stdin_without_stdin_once_keeps_the_container_stdin(cenv, transport):
    cid = attach_target(cenv, ["cat"], stdin_once=False)
    first = attach_and_echo(cenv, cid, transport, b"one\n")
    first.close_stdin()
    # cat still reads: both clients see its answer, the first still attached for output.
    second = attach_and_echo(cenv, cid, transport, b"two\n")
    first.wait(lambda: b"two\n" in first.stdout)
    assert cenv.state(cid) == pb.CONTAINER_RUNNING
    first.close()
    second.close_stdin()
    second.close()
    attach_and_echo(cenv, cid, transport, b"three\n").close()
    assert cenv.state(cid) == pb.CONTAINER_RUNNING


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_stdin_once_first_close_ends_the_container_stdin(cenv, transport):
    cid = attach_target(cenv, ["sh", "-c", "cat; echo stdin-closed"], stdin_once=True)
    c = attach_and_echo(cenv, cid, transport, b"one\n")
    c.close_stdin()
    c.wait(lambda: b"stdin-closed\n" in c.stdout)
    c.wait_closed()
    c.close()
    assert cenv.wait_exit(cid).exit_code == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_stdin_once_first_client_leaving_closes_the_container_stdin(cenv, transport):
    cid = attach_target(cenv, ["cat"], stdin_once=True)
    attach_and_echo(cenv, cid, transport, b"one\n").close()  # gone without closing stdin
    assert cenv.wait_exit(cid).exit_code == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_disconnect_ends_the_session_and_the_container_runs_on(cenv, transport):
    cid = attach_target(cenv, ["cat"], stdin_once=False)
    mon = the_monitor(cid)
    c = attach_and_echo(cenv, cid, transport, b"one\n")
    sock = c.s.sock if transport == "spdy" else c.ws.sock
    sock.shutdown(socket.SHUT_RDWR)  # abrupt: no close frame, no FIN on stdin
    c.close()
    assert cenv.state(cid) == pb.CONTAINER_RUNNING and alive(mon)
    attach_and_echo(cenv, cid, transport, b"two\n").close()
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    assert cenv.state(cid) == pb.CONTAINER_RUNNING


# ---- sessions that outlive crisp ----

@pytest.mark.parametrize("how", ["kill9", "sigterm"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_session_outlives_crisp(cenv, transport, how):
    cid = running(cenv)
    mon = the_monitor(cid)
    url = exec_url(cenv, cid, ["sh"], stdin=True, stderr=False, tty=True)
    c = open_client(transport, url, stdin=True, stderr=False)
    c.resize(100, 30)
    typed(c, "before", 1)
    bring_down(cenv, how)
    typed(c, "during", 2)
    c.resize(101, 31)
    c.send_stdin(b"stty size\n")
    c.wait(lambda: b"31 101" in c.stdout)
    cenv.d.start()
    typed(c, "after", 3)
    c.send_stdin(b"exit 7\n")
    c.wait_closed()
    assert c.exit_code() == 7
    c.close()
    assert mon in monitors(cid), "the container's monitor changed"
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    s = open_client(transport, exec_url(cenv, cid, ["echo", "new"]))
    s.wait_closed()
    assert s.stdout == b"new\n" and s.exit_code() == 0
    s.close()


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_session_outlives_crisp(cenv, transport, how):
    cid = attach_target(cenv, ["sh"], tty=True)
    c = open_client(transport, attach_url(cenv, cid, stdin=True, stderr=False, tty=True),
                    stdin=True, stderr=False)
    typed(c, "before", 1)
    bring_down(cenv, how)
    typed(c, "during", 2)
    cenv.d.start()
    typed(c, "after", 3)
    c.send_stdin(b"exit 7\n")
    c.wait_closed()
    c.close()
    assert cenv.wait_exit(cid).exit_code == 7


# ---- a switch of binaries in the middle of a session ----
#
# test_upgrade.py switches from a build of an old commit, whose monitors cannot own a session
# (they predate issue 12): a session opened against it would be crisp's and die with it, by
# design.  What an upgrade must keep is a session opened against a crisp that hands sessions
# to its monitors, so this switches between two copies of the current build at different
# paths: the monitor runs from the first copy, crisp restarts from the second.

@pytest.fixture
def switchenv(crisp_factory, registry, tmp_path):
    from test_upgrade import BINARIES, SwitchableDaemon
    first = tmp_path / "bin-first"
    first.mkdir()
    for name in BINARIES:
        shutil.copy2(os.path.join(BUILDDIR, name), first / name)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, push_extra_images(registry), logdir,
                   cls=SwitchableDaemon, bindir=str(first))
    env.first_bin = str(first)
    yield env
    leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_session_survives_a_switch_of_binaries(switchenv, transport):
    env, d = switchenv, switchenv.d
    cid = running(env)
    mon = the_monitor(cid)
    assert read_cmdline(mon)[0] == os.path.join(env.first_bin, "crisp-conmon")
    c = open_client(transport, exec_url(env, cid, ["sh"], stdin=True, stderr=False, tty=True),
                    stdin=True, stderr=False)
    typed(c, "before", 1)
    assert d.stop() == 0
    d.switch_to(os.path.dirname(CRISP))
    typed(c, "during", 2)
    d.start()
    assert read_cmdline(d.proc.pid)[0] == CRISP
    typed(c, "after", 3)
    c.send_stdin(b"exit 7\n")
    c.wait_closed()
    assert c.exit_code() == 7
    c.close()
    assert mon in monitors(cid)
    s = open_client(transport, exec_url(env, cid, ["echo", "new"]))
    s.wait_closed()
    assert s.stdout == b"new\n"
    s.close()


# ---- port-forward ----

PF_CLIENTS = [("spdy", None), ("ws", V4), ("ws", V4_BASE64)]


def test_many_exec_sessions_at_once(cenv):
    """120 exec sessions at once over both transports, 30 per container (the monitor serves at
    most 32): each gets its own output and its own exit code."""
    pod = cenv.run_pod()
    cids = [cenv.run(pod, "sh%d" % i, command=SLEEPER) for i in range(4)]
    n = 120
    urls = [exec_url(cenv, cids[i % 4], ["sh", "-c", "echo out-%d; exit %d" % (i, i % 7)],
                     stderr=False) for i in range(n)]
    errors = []

    def one(i):
        try:
            if i % 2:
                c = ws_client.exec_session(urls[i], (V5,), timeout=60)
            else:
                c = SpdyClient(urls[i], stderr=False)
            c.wait_closed(60)
            got = (c.stdout, c.exit_code())
            if got != (b"out-%d\n" % i, i % 7):
                errors.append((i, got))
            c.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert errors == [], (len(errors), sorted(errors)[:12])


def test_ws_port_forward_without_ports_is_refused_clearly(pfenv):
    pod = pod_with_own_netns(pfenv)
    status, _, body = ws_client.raw_upgrade(pf_url(pfenv, pod, []), protocols=(V4,))[:3]
    assert status == 400, (status, body)
    assert b"needs its ports" in body, body


@pytest.mark.parametrize("port", ["0", "65536", "80x", "", "8080,x"])
def test_ws_port_forward_bad_query_port_is_refused(pfenv, port):
    pod = pod_with_own_netns(pfenv)
    status, _, body = ws_client.raw_upgrade(pf_url(pfenv, pod, []), protocols=(V4,),
                                            ports=[port])[:3]
    assert status == 400 and b"port" in body, (status, body)


def test_ws_port_forward_base64_carries_at_most_five_ports(pfenv):
    pod = pod_with_own_netns(pfenv)
    status, _, body = ws_client.raw_upgrade(pf_url(pfenv, pod, list(range(8000, 8006))),
                                            protocols=(V4_BASE64,))[:3]
    assert status == 400 and b"at most 5" in body, (status, body)


def pf_url(env, pod, ports):
    return env.c.call("PortForward", pb.PortForwardRequest(pod_sandbox_id=pod, port=ports)).url


@pytest.mark.parametrize("transport,protocol", PF_CLIENTS,
                         ids=["spdy", "ws-v4", "ws-v4.base64"])
def test_port_forward_each_protocol(pfenv, transport, protocol):
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    if transport == "spdy":
        s = port_forward_session(pfenv, pod, 8080)
        err, data = open_pair(s, 8080, 0)
        s.send(data, b"ping-from-client\n", fin=True)
        s.wait_closed([data, err])
        assert (s.data[data], s.data[err]) == (b"pod got ping-from-client\n", b"")
        s.close()
        return
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8080]), [8080], (protocol,), query=False)
    assert pf.protocol == protocol
    pf.wait_prefixes()
    pf.send_to(0, b"ping-from-client\n")
    pf.wait(lambda: pf.received(0).endswith(b"\n"), what="the pod's answer")
    assert pf.received(0) == b"pod got ping-from-client\n"
    assert pf.port_error(0) == b""
    pf.close()


def test_ws_port_forward_ports_from_the_query_in_their_order(pfenv):
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    srv = reply_server_named(pfenv, pod, 8081)
    assert srv
    pf = ws_client.port_forward(pf_url(pfenv, pod, []), [8081, 8080], (V4,))
    pf.wait_prefixes()
    pf.send_to(0, b"to-8081\n")
    pf.send_to(1, b"to-8080\n")
    pf.wait(lambda: pf.received(0).endswith(b"\n") and pf.received(1).endswith(b"\n"))
    assert (pf.received(0), pf.received(1)) == (b"pod got to-8081\n", b"pod got to-8080\n")
    pf.close()


def test_ws_port_forward_two_ports_from_the_request(pfenv):
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    reply_server_named(pfenv, pod, 8081)
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8080, 8081]), [8080, 8081], (V4,),
                                query=False)
    pf.wait_prefixes()
    pf.send_to(1, b"to-8081\n")
    pf.wait(lambda: pf.received(1).endswith(b"\n"))
    pf.send_to(0, b"to-8080\n")
    pf.wait(lambda: pf.received(0).endswith(b"\n"))
    assert (pf.received(0), pf.received(1)) == (b"pod got to-8080\n", b"pod got to-8081\n")
    pf.wait_closed(20)  # both one-shot servers hung up: every port is done
    assert (pf.port_error(0), pf.port_error(1)) == (b"", b"")
    pf.close()


@pytest.mark.parametrize("kind", ["garbage", "unmasked"])
def test_ws_port_forward_bad_frame_ends_only_that_session(pfenv, kind):
    pod = pod_with_own_netns(pfenv)
    persistent_reply_server(pfenv, pod, 8090)
    status, _, rest, sock = ws_client.raw_upgrade(pf_url(pfenv, pod, [8090]), protocols=(V4,))
    assert status == 101
    bad = (b"\xff" * 32 if kind == "garbage"
           else ws_client.frame(0x2, b"\x00hello\n", mask=False))
    send_hostile(sock, bad)
    got = rest + ws_client.read_until_eof(sock, 20)
    sock.close()
    assert close_codes(got) == [1002], ws_client.server_frames(got)
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8090]), [8090], (V4,), query=False)
    pf.wait_prefixes()
    pf.send_to(0, b"after\n")
    pf.wait(lambda: pf.received(0).endswith(b"\n"))
    assert pf.received(0) == b"pod got after\n"
    pf.close()


def persistent_reply_server(env, pod, port):
    """reply_server() that serves every connection (busybox nc -ll)."""
    from test_streaming import wait_listening
    script = "printf '#!/bin/sh\\nread l\\necho \"pod got $l\"\\n' > /tmp/srv; chmod +x /tmp/srv; "
    cid = env.run(pod, "psrv%d" % port,
                  command=["sh", "-c", script + "exec nc -ll -p %d -e /tmp/srv" % port])
    wait_listening(env, cid, port)
    return cid


def test_ws_port_forward_many_at_once(pfenv):
    """100 WebSocket port-forward sessions at once (more than the 64 served at a time): every
    one gets its own answer, and none is mixed up with another."""
    pod = pod_with_own_netns(pfenv)
    persistent_reply_server(pfenv, pod, 8091)
    urls = [pf_url(pfenv, pod, [8091]) for _ in range(100)]
    errors = []

    def one(i):
        try:
            pf = ws_client.port_forward(urls[i], [8091], (V4,), query=False, timeout=60)
            pf.wait_prefixes(60)
            pf.send_to(0, b"n%d\n" % i)
            pf.wait(lambda: pf.received(0).endswith(b"\n"), 60)
            if pf.received(0) != b"pod got n%d\n" % i:
                errors.append((i, pf.received(0)))
            pf.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((i, repr(e)))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [], (len(errors), sorted(errors)[:12])


def reply_server_named(env, pod, port):
    """reply_server() for a second port (containers need distinct names)."""
    from test_streaming import wait_listening
    script = "printf '#!/bin/sh\\nread l\\necho \"pod got $l\"\\n' > /tmp/srv; chmod +x /tmp/srv; "
    cid = env.run(pod, "srv%d" % port, command=["sh", "-c", script + "nc -l -p %d -e /tmp/srv; "
                                                                     "sleep 3600" % port])
    wait_listening(env, cid, port)
    return cid


def test_long_port_forwards_do_not_hold_back_exec(pfenv):
    """70 open port-forward sessions (more than the 64 connections served at once) leave room
    for an exec session: port-forwards run in threads of their own."""
    pod = pod_with_own_netns(pfenv)
    cid = pfenv.run(pod, "idle", command=SLEEPER)
    sessions = [port_forward_session(pfenv, pod, 8080) for _ in range(70)]
    try:
        c = ws_client.exec_session(exec_url(pfenv, cid, ["echo", "still-served"], stderr=False),
                                   (V5,), timeout=30)
        c.wait_closed(30)
        assert (c.stdout, c.exit_code()) == (b"still-served\n", 0)
        c.close()
    finally:
        for s in sessions:
            s.close()


def test_ws_port_forward_to_a_closed_port_reports_on_the_error_channel(pfenv):
    pod = pod_with_own_netns(pfenv)
    pfenv.run(pod, "idle", command=SLEEPER)
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8082]), [8082], (V4_BASE64,), query=False)
    pf.wait_prefixes()
    pf.wait(lambda: pf.port_error(0), what="the connect error")
    err = pf.port_error(0)
    assert b"8082" in err and b"refused" in err.lower(), err
    pf.close()


def test_ws_port_forward_dies_with_crisp(pfenv):
    """Port-forward stays in crisp: a kill ends it (and the restarted crisp serves again)."""
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8080]), [8080], (V4,), query=False)
    pf.wait_prefixes()
    pfenv.d.kill9()
    pf.wait_closed(10)
    assert pf.eof
    pf.close()
    pfenv.d.start()
    # The first session's connection took the one-shot server on 8080: a second one answers.
    reply_server_named(pfenv, pod, 8081)
    pf = ws_client.port_forward(pf_url(pfenv, pod, [8081]), [8081], (V4,), query=False)
    pf.wait_prefixes()
    pf.send_to(0, b"again\n")
    pf.wait(lambda: pf.received(0).endswith(b"\n"))
    assert pf.received(0) == b"pod got again\n"
    pf.close()


# ---- hostile clients: only their own session ends ----

class Bystander:
    """An exec session beside a hostile one: it must keep answering."""

    def __init__(self, env, cid, transport):
        url = exec_url(env, cid, ECHO, stdin=True, stderr=False)
        self.c = open_client(transport, url, stdin=True, stderr=False)
        self.n = 0

    def check(self):
        self.n += 1
        line = b"ping%d\n" % self.n
        self.c.send_stdin(line)
        self.c.wait(lambda: b"got:" + line in self.c.stdout, what="the bystander's echo")

    def finish(self):
        self.c.close_stdin()
        self.c.wait_closed()
        assert self.c.exit_code() == 0
        self.c.close()


def still_serving(env, cid, mon, bystander, transport):
    """The container, its monitor, crisp and the other session are all fine."""
    bystander.check()
    assert env.d.proc.poll() is None, "crisp died"
    assert alive(mon) and mon in monitors(cid), "the monitor died"
    assert env.state(cid) == pb.CONTAINER_RUNNING
    assert env.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    s = open_client(transport, exec_url(env, cid, ["echo", "fresh"]))
    s.wait_closed()
    assert s.stdout == b"fresh\n"
    s.close()
    bystander.check()


def hostile_spdy_session(env, cid):
    """An established SPDY exec session of `cat` (streams open, one line echoed)."""
    c = SpdyClient(exec_url(env, cid, ["cat"], stdin=True, stderr=False), stdin=True,
                   stderr=False)
    c.send_stdin(b"x\n")
    c.wait(lambda: c.stdout == b"x\n")
    return c


def hostile_ws_session(env, cid, established=True):
    """A raw WebSocket v5 exec session of `cat`, ESTABLISHED: after one line echoed."""
    status, _, rest, sock = ws_client.raw_upgrade(
        exec_url(env, cid, ["cat"], stdin=True, stderr=False), (V5,))
    assert status == 101
    if not established:
        return sock
    sock.sendall(ws_client.channel_frame(STDIN, b"x\n"))
    got = rest
    while [p for op, p in ws_client.server_frames(got) if p[1:] == b"x\n"] == []:
        chunk = sock.recv(65536)
        assert chunk, "the server closed a well-formed session"
        got += chunk
    return sock


def send_hostile(sock, data):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may hang up before it has read it all


def close_codes(data):
    return [struct.unpack(">H", p[:2])[0] for op, p in ws_client.server_frames(data)
            if op == 0x8 and len(p) >= 2]


def spdy_data_frame_header(stream_id, length):
    return struct.pack(">II", stream_id, length)


HOSTILE_SPDY = {
    "garbage": lambda c: b"\x80\x03\x00\x01" + b"\xff" * 64,
    "oversized-frame": lambda c: spdy_data_frame_header(c.ids["stdin"], MiB + 1)
    + b"y" * (MiB + 1),
    "bad-header-block": lambda c: struct.pack(">HHI", 0x8003, 1, 10 + 12)
    + struct.pack(">IIH", 99, 0, 0) + b"\x78\x9c" + b"\xff" * 10,
}

HOSTILE_WS = {
    # (the bytes, the close code crisp may send before it hangs up, sent mid-session or
    # right after the upgrade)
    "garbage": (lambda: b"\xff" * 64, 1002, True),
    "garbage-at-once": (lambda: b"\x00garbage\r\n" * 10, 1002, False),
    "oversized-frame": (lambda: ws_client.channel_frame(STDIN, b"y" * (MiB + 1)), 1009, True),
    "oversized-message": (lambda: ws_client.frame(0x2, b"\x00" + b"y" * 600000, fin=False)
                          + ws_client.frame(0x0, b"y" * 600000), 1009, True),
    "unmasked-frame": (lambda: ws_client.channel_frame(STDIN, b"x\n", mask=False), 1002, True),
    "reserved-bits": (lambda: ws_client.channel_frame(STDIN, b"x\n", rsv=4), 1002, True),
    "long-control-frame": (lambda: ws_client.frame(0x9, b"p" * 200), 1002, True),
}


HOSTILE = [("spdy", k) for k in sorted(HOSTILE_SPDY)] + [("ws", k) for k in sorted(HOSTILE_WS)]


@pytest.mark.parametrize("transport,kind", HOSTILE, ids=["-".join(h) for h in HOSTILE])
def test_hostile_client_ends_only_its_session(cenv, transport, kind):
    cid = running(cenv)
    mon = the_monitor(cid)
    bystander = Bystander(cenv, cid, transport)
    code = None
    if transport == "spdy":
        c = hostile_spdy_session(cenv, cid)
        sock, data = c.s.sock, HOSTILE_SPDY[kind](c)
    else:
        make, code, established = HOSTILE_WS[kind]
        sock, data = hostile_ws_session(cenv, cid, established), make()
    send_hostile(sock, data)
    got = ws_client.read_until_eof(sock, 20)
    sock.close()
    if code is not None:
        assert set(close_codes(got)) <= {code}, close_codes(got)
    still_serving(cenv, cid, mon, bystander, transport)
    bystander.finish()


def test_ws_client_close_is_answered_with_a_close(cenv):
    """RFC 6455 section 5.5.1: the server answers a CLOSE with a CLOSE, then nothing."""
    cid = running(cenv)
    sock = hostile_ws_session(cenv, cid)
    sock.sendall(ws_client.frame(0x8, struct.pack(">H", 1000)))
    got = ws_client.read_until_eof(sock, 20)
    sock.close()
    frames = ws_client.server_frames(got)
    # The answer comes at once: not after the command has ended and reported its exit.
    assert [op for op, _ in frames] == [0x8] and close_codes(got) == [1000], frames


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_dropped_tty_session_hangs_up_its_shell(cenv, transport):
    """A terminal whose client left hangs up: an interactive shell (which ignores SIGTERM)
    gets SIGHUP, not only the SIGKILL that ends the grace period."""
    cid = running(cenv)
    marker = "/tmp/hup-" + transport
    script = ("trap 'echo hup > %s; exit 0' HUP; trap '' TERM; echo ready; "
              "while :; do sleep 1; done" % marker)
    url = exec_url(cenv, cid, ["sh", "-c", script], stdin=True, stderr=False, tty=True)
    if transport == "ws":
        c = ws_client.exec_session(url, (V5,))
    else:
        c = SpdyClient(url, stdin=True, stderr=False)
    c.wait(lambda: b"ready" in c.stdout, what="the shell to start")
    c.close()
    wait_for(lambda: cenv.exec_sync(cid, ["cat", marker]).stdout == b"hup\n", 15,
             what="the shell to record its SIGHUP")


def non_reader(transport, url):
    """The socket of a session (stdout only) whose client will never read."""
    if transport == "spdy":
        return exec_session(url, stderr=False)[0].sock
    status, _, _, sock = ws_client.raw_upgrade(url)
    assert status == 101
    return sock


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_client_that_never_reads(cenv, transport):
    cid = running(cenv)
    mon = the_monitor(cid)
    bystander = Bystander(cenv, cid, transport)
    sock = non_reader(transport, exec_url(cenv, cid, ["cat", "/dev/zero"], stderr=False))
    time.sleep(3)  # let every buffer between cat and the client fill up
    for _ in range(3):
        still_serving(cenv, cid, mon, bystander, transport)
    sock.close()
    # The session ends with its client, and with it the command.
    wait_for(lambda: not pids_with_argv(["cat", "/dev/zero"]), 30,
             what="the exec of a departed client to end")
    still_serving(cenv, cid, mon, bystander, transport)
    bystander.finish()


FLOOD = ["sh", "-c", "i=0; while :; do head -c 131072 /dev/zero | tr '\\0' x; "
                     "echo \" tick$i\"; i=$((i+1)); usleep 50000; done"]


def ticks(data):
    return [int(t) for t in re.findall(rb" tick(\d+)\n", data)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_attach_client_that_never_reads(cenv, transport):
    cid = attach_target(cenv, FLOOD, stdin_once=False)
    mon = the_monitor(cid)
    sock = non_reader(transport, attach_url(cenv, cid, stderr=False))
    log = cenv.status(cid).status.log_path
    time.sleep(3)  # several MiB the client does not read
    reader = open_client(transport, attach_url(cenv, cid, stderr=False), stderr=False)
    reader.wait(lambda: len(ticks(reader.stdout)) >= 3, 30, what="output to a reading client")
    first = ticks(reader.stdout)[0]
    size = os.path.getsize(log)
    reader.wait(lambda: ticks(reader.stdout)[-1] >= first + 20, 30, what="more output")
    assert os.path.getsize(log) > size, "the container's log stopped"
    assert alive(mon) and cenv.state(cid) == pb.CONTAINER_RUNNING
    assert cenv.d.proc.poll() is None
    assert cenv.exec_sync(cid, ["echo", "ok"]).stdout == b"ok\n"
    sock.close()
    reader.close()
    assert cenv.state(cid) == pb.CONTAINER_RUNNING
    cenv.stop(cid, timeout=0)


# ---- tokens ----

def test_ws_token_is_single_use(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["true"])
    s = ws_client.exec_session(url, (V5,))
    assert s.wait_closed() == 1000
    s.close()
    with pytest.raises(HandshakeError) as e:
        ws_client.exec_session(url, (V5,))
    assert e.value.status == 404
    assert upgrade(url)[0].status == 404
    # Nor does a token of one kind open another.
    url = exec_url(cenv, cid, ["true"])
    assert ws_client.raw_upgrade(url.replace("/exec/", "/attach/"))[0] == 404
    assert ws_client.raw_upgrade(url.replace("/exec/", "/portforward/"))[0] == 404


def test_the_1001st_pending_token_is_refused(cenv):
    """At most 1000 tokens wait (TOKENS_MAX in server/streaming.c); a used one frees its
    place."""
    cid = running(cenv)
    urls = [exec_url(cenv, cid, ["echo", "n"]) for _ in range(1000)]
    assert len(set(urls)) == 1000
    e = rpc_error(exec_url, cenv, cid, ["true"])
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    e = rpc_error(attach_url, cenv, cid)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e
    c = SpdyClient(urls[0])
    c.wait_closed()
    assert c.stdout == b"n\n"
    c.close()
    exec_url(cenv, cid, ["true"])  # the freed place
    e = rpc_error(exec_url, cenv, cid, ["true"])
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.skipif(not os.environ.get("CRISP_SLOW_TESTS"),
                    reason="tokens expire after a fixed 60 s (TOKEN_TTL_US in "
                           "server/streaming.c) and nothing shortens it; "
                           "CRISP_SLOW_TESTS=1 waits it out")
def test_token_expires_after_60_seconds(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["true"])
    time.sleep(61)
    assert ws_client.raw_upgrade(url)[0] == 404
