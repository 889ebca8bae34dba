"""crisp's streaming server: Exec returns a single-use URL on [streaming] address:port; the
URL upgrades to SPDY/3.1 and runs a remotecommand session (stdin/stdout/stderr streams, the
exit on the error stream). Driven with spdy_client.py (an independent SPDY/3.1 client), and
with crictl when it is installed.
"""
import json
import os
import shutil
import socket
import subprocess
import urllib.parse

import pytest

from container_harness import SLEEPER, cenv, rpc_error  # noqa: F401 (fixture)
from cri_client import pb
from spdy_client import Session, exec_session, upgrade

import grpc

CRICTL = os.environ.get("CRICTL") or shutil.which("crictl") or "/tmp/cri-tools/bin/crictl"


def exec_url(env, cid, cmd, stdin=False, stdout=True, stderr=True, tty=False):
    return env.c.call("Exec", pb.ExecRequest(container_id=cid, cmd=cmd, stdin=stdin,
                                             stdout=stdout, stderr=stderr, tty=tty)).url


def running(env):
    pod = env.run_pod()
    return env.run(pod, "sh", command=SLEEPER)


def finish(s, ids):
    s.wait_closed([ids["error"]] + [ids[k] for k in ("stdout", "stderr") if k in ids])
    return s


def test_exec_url_points_at_the_listening_port(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["true"])
    u = urllib.parse.urlsplit(url)
    assert u.scheme == "http" and u.hostname == "127.0.0.1" and u.port
    assert u.path.startswith("/exec/") and len(u.path.split("/")[2]) == 64
    socket.create_connection((u.hostname, u.port), timeout=5).close()


def test_exec_stdout_and_success_status(cenv):
    cid = running(cenv)
    s, ids, proto = exec_session(exec_url(cenv, cid, ["echo", "hi"]))
    assert proto == "v4.channel.k8s.io"
    finish(s, ids)
    assert s.data[ids["stdout"]] == b"hi\n"
    assert s.data[ids["stderr"]] == b""
    status = json.loads(s.data[ids["error"]])
    assert status["status"] == "Success", status
    s.close()


def test_exec_exit_code_on_the_error_stream(cenv):
    cid = running(cenv)
    s, ids, _ = exec_session(exec_url(cenv, cid, ["sh", "-c", "echo oops >&2; exit 3"]))
    finish(s, ids)
    assert s.data[ids["stderr"]] == b"oops\n"
    status = json.loads(s.data[ids["error"]])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode", status
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    s.close()


def test_exec_stdin_is_copied_to_the_command(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["sh", "-c", "cat; echo done"], stdin=True, stderr=False)
    s, ids, _ = exec_session(url, stdin=True, stderr=False)
    payload = b"line one\n" + b"x" * 100000 + b"\n"
    s.send(ids["stdin"], payload[:50000])
    s.send(ids["stdin"], payload[50000:], fin=True)
    finish(s, ids)
    assert s.data[ids["stdout"]] == payload + b"done\n"
    assert json.loads(s.data[ids["error"]])["status"] == "Success"
    s.close()


def test_exec_large_stdin_through_cat_does_not_deadlock(cenv):
    # cat writes back as it reads: crisp must keep reading stdout while stdin waits.
    cid = running(cenv)
    url = exec_url(cenv, cid, ["cat"], stdin=True, stderr=False)
    s, ids, _ = exec_session(url, stdin=True, stderr=False)
    payload = bytes(range(256)) * (4 * 4096)  # 4 MiB
    import threading
    def feed():
        for off in range(0, len(payload), 32768):
            s.send(ids["stdin"], payload[off:off + 32768], fin=off + 32768 >= len(payload))
    t = threading.Thread(target=feed)
    t.start()
    finish(s, ids)
    t.join(30)
    assert s.data[ids["stdout"]] == payload
    assert json.loads(s.data[ids["error"]])["status"] == "Success"
    s.close()


def test_exec_older_protocol_reports_exit_as_text(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["sh", "-c", "exit 5"])
    s, ids, proto = exec_session(url, protocols=("v9.example", "v2.channel.k8s.io"))
    assert proto == "v2.channel.k8s.io"
    finish(s, ids)
    assert s.data[ids["error"]] == b"command terminated with non-zero exit code: 5"
    s.close()


def test_exec_answers_ping(cenv):
    cid = running(cenv)
    s, ids, _ = exec_session(exec_url(cenv, cid, ["sleep", "1"]))
    s.ping(7)
    s.wait(lambda: 7 in s.pings, timeout=5)
    finish(s, ids)
    s.close()


def test_token_is_single_use(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["true"])
    s, ids, _ = exec_session(url)
    finish(s, ids)
    s.close()
    res, sock, _ = upgrade(url)
    assert sock is None and res.status == 404


def test_unknown_token_and_path_and_bad_requests(cenv):
    cid = running(cenv)
    url = exec_url(cenv, cid, ["true"])
    u = urllib.parse.urlsplit(url)
    base = "http://%s" % u.netloc
    assert upgrade(base + "/exec/" + "0" * 64)[0].status == 404
    assert upgrade(base + "/nothing/here")[0].status == 404
    # No upgrade: refused, and the token is not spent by it.
    assert upgrade(url, spdy=False)[0].status == 400
    # No protocol crisp speaks: refused (the token is spent: it was presented).
    url2 = exec_url(cenv, cid, ["true"])
    assert upgrade(url2, protocols=("v99.channel.k8s.io",))[0].status == 403
    # Garbage and an oversized head get an HTTP error, and the server keeps serving.
    with socket.create_connection((u.hostname, u.port), timeout=10) as sk:
        sk.sendall(b"\x00\x01garbage\r\n\r\n")
        assert sk.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((u.hostname, u.port), timeout=10) as sk:
        sk.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000)
        assert sk.recv(100).startswith(b"HTTP/1.1 431")
    s, ids, _ = exec_session(url)
    finish(s, ids)
    assert json.loads(s.data[ids["error"]])["status"] == "Success"
    s.close()


def test_garbage_spdy_after_upgrade_closes_only_that_session(cenv):
    cid = running(cenv)
    res, sock, rest = upgrade(exec_url(cenv, cid, ["true"]))
    assert res.status == 101
    sock.sendall(b"\x80\x02\x00\x01" + b"\xff" * 64)
    sock.settimeout(10)
    assert sock.recv(100) == b""  # crisp hung up
    sock.close()
    s, ids, _ = exec_session(exec_url(cenv, cid, ["echo", "still"]))
    finish(s, ids)
    assert s.data[ids["stdout"]] == b"still\n"
    s.close()


def test_daemon_stops_cleanly_with_sessions_open(cenv):
    import time
    cid = running(cenv)
    s, ids, _ = exec_session(exec_url(cenv, cid, ["sleep", "30"]))
    url = exec_url(cenv, cid, ["true"])
    u = urllib.parse.urlsplit(url)
    half = socket.create_connection((u.hostname, u.port), timeout=10)
    half.sendall(b"POST " + u.path.encode() + b" HTTP/1.1\r\n")  # a head still being read
    t0 = time.monotonic()
    assert cenv.d.stop() == 0
    assert time.monotonic() - t0 < 10
    half.close()
    s.close()


def test_exec_request_validation(cenv):
    cid = running(cenv)
    e = rpc_error(exec_url, cenv, cid, [])
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    e = rpc_error(exec_url, cenv, "0" * 64, ["true"])
    assert e.code() == grpc.StatusCode.NOT_FOUND
    e = rpc_error(exec_url, cenv, cid, ["true"], stdout=False, stderr=False)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    cenv.stop(cid, timeout=0)
    e = rpc_error(exec_url, cenv, cid, ["true"])
    assert e.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_streaming_port_from_config(crisp_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    crisp_factory(config="[streaming]\naddress = 127.0.0.1\nport = %d\n" % port)
    socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.skipif(not os.access(CRICTL, os.X_OK), reason="crictl is not installed")
def test_crictl_exec(cenv):
    cid = running(cenv)
    base = [CRICTL, "--runtime-endpoint", "unix://" + cenv.d.sock, "--timeout", "30s"]
    r = subprocess.run(base + ["exec", cid, "sh", "-c", "echo from-crictl; exit 4"],
                       capture_output=True, timeout=60)
    assert r.stdout == b"from-crictl\n", r
    assert r.returncode != 0, r
    r = subprocess.run(base + ["exec", "-i", cid, "tr", "a-z", "A-Z"], input=b"shout\n",
                       capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"SHOUT\n"), r


def test_exec_tty_resize_and_exit_code(cenv):
    cid = running(cenv)
    cmd = ["sh", "-c", "read x; stty size; [ -t 0 ] && echo is-a-tty; exit 3"]
    url = exec_url(cenv, cid, cmd, stdin=True, stdout=True, stderr=False, tty=True)
    s, ids, _ = exec_session(url, stdin=True, stderr=False)
    resize = s.open_stream("resize")
    s.wait(lambda: resize in s.replied)
    s.send(resize, json.dumps({"Width": 123, "Height": 45}).encode())
    s.send(ids["stdin"], b"go\n")
    finish(s, ids)
    out = s.data[ids["stdout"]]
    assert b"45 123\r\n" in out and b"is-a-tty\r\n" in out, out
    status = json.loads(s.data[ids["error"]])
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}], status
    s.close()


def test_exec_tty_rejects_stderr(cenv):
    cid = running(cenv)
    e = rpc_error(exec_url, cenv, cid, ["true"], stderr=True, tty=True)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---- port-forward ----

@pytest.fixture
def pfenv(crisp_factory, registry, tmp_path):
    """A ContainerEnv whose pods get their own network namespace with only loopback (CNI
    `loopback`): nothing is created on the host, and 127.0.0.1 in the pod is not the host's."""
    from container_harness import finish_env, push_extra_images, ContainerEnv
    from image_harness import registries_conf
    from pod_harness import PLUGIN_DIRS
    if not any(os.path.exists(os.path.join(d, "loopback")) for d in PLUGIN_DIRS):
        pytest.skip("the CNI loopback plugin is not installed")
    images = push_extra_images(registry)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    d = crisp_factory(config="[network]\ncni-plugin-dirs = %s\n" % ";".join(PLUGIN_DIRS),
                      start=False)
    with open(os.path.join(d.registries_dir, "50-test.conf"), "w") as f:
        f.write(registries_conf(registry.host, None))
    with open(os.path.join(d.cni_dir, "10-lo.conflist"), "w") as f:
        json.dump({"cniVersion": "1.0.0", "name": "crisp-stream-lo",
                   "plugins": [{"type": "loopback"}]}, f)
    d.start()
    env = ContainerEnv(d, registry, images, logdir)
    yield env
    leaks = finish_env(env)
    assert not leaks, "leaked: %s" % leaks


def pod_with_own_netns(env):
    cfg = env.pod_config("pf")
    cfg.linux.security_context.namespace_options.network = pb.POD
    os.makedirs(cfg.log_directory, exist_ok=True)
    pod = env.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg), timeout=60)
    env.pods[pod.pod_sandbox_id] = cfg
    return pod.pod_sandbox_id


def port_forward_session(env, pod, port):
    url = env.c.call("PortForward", pb.PortForwardRequest(pod_sandbox_id=pod, port=[port])).url
    assert "/portforward/" in url
    res, sock, rest = upgrade(url, protocols=("portforward.k8s.io",))
    assert res.status == 101, res.body
    assert res.headers["x-stream-protocol-version"] == ["portforward.k8s.io"]
    return Session(sock, rest)


def open_pair(s, port, request_id):
    extra = [("port", str(port)), ("requestid", str(request_id))]
    err = s.open_stream("error", extra)
    data = s.open_stream("data", extra)
    s.wait(lambda: err in s.replied and data in s.replied)
    return err, data


def test_port_forward_reaches_a_server_in_the_pod_netns(pfenv):
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    s = port_forward_session(pfenv, pod, 8080)
    err, data = open_pair(s, 8080, 0)
    s.send(data, b"ping-from-client\n", fin=True)
    s.wait_closed([data, err])
    assert s.data[data] == b"pod got ping-from-client\n"
    assert s.data[err] == b""
    s.close()


def test_port_forward_to_a_closed_port_reports_on_the_error_stream(pfenv):
    pod = pod_with_own_netns(pfenv)
    pfenv.run(pod, "idle", command=SLEEPER)
    s = port_forward_session(pfenv, pod, 8081)
    err, data = open_pair(s, 8081, 1)
    s.wait_closed([err, data])
    assert b"8081" in s.data[err] and b"refused" in s.data[err].lower(), s.data[err]
    s.close()


def test_port_forward_validation(pfenv):
    e = rpc_error(pfenv.c.call, "PortForward", pb.PortForwardRequest(pod_sandbox_id="0" * 64))
    assert e.code() == grpc.StatusCode.NOT_FOUND
    pod = pod_with_own_netns(pfenv)
    e = rpc_error(pfenv.c.call, "PortForward",
                  pb.PortForwardRequest(pod_sandbox_id=pod, port=[70000]))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT


def reply_server(env, pod, port):
    """A one-shot busybox nc server on PORT in POD that answers "pod got <line>" only after
    reading the client's line, so both directions are checked."""
    script = "printf '#!/bin/sh\\nread l\\necho \"pod got $l\"\\n' > /tmp/srv; chmod +x /tmp/srv; "
    cid = env.run(pod, "srv", command=["sh", "-c", script + "nc -l -p %d -e /tmp/srv; "
                                                            "sleep 3600" % port])
    wait_listening(env, cid, port)
    return cid


def wait_listening(env, cid, port):
    from container_harness import wait_for
    hexport = ":%04X" % port
    # busybox nc listens on :: (dual stack), so the socket shows in tcp6.
    wait_for(lambda: hexport in env.exec_sync(
        cid, ["cat", "/proc/net/tcp", "/proc/net/tcp6"]).stdout.decode(),
             10, what="port %d to listen" % port)


# ---- attach ----

def attach_url(env, cid, stdin=False, stdout=True, stderr=True, tty=False):
    return env.c.call("Attach", pb.AttachRequest(container_id=cid, stdin=stdin, stdout=stdout,
                                                 stderr=stderr, tty=tty)).url


def test_attach_bridges_stdin_stdout_stderr(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("echoer", command=["sh", "-c", 'while read l; do echo "out:$l"; '
                                                     'echo "err:$l" >&2; done; echo bye'])
    cfg.stdin = True
    cfg.stdin_once = True  # only then does a client's close of stdin close the container's
    cid = cenv.create(pod, config=cfg)
    cenv.start(cid)
    url = attach_url(cenv, cid, stdin=True)
    assert "/attach/" in url
    s, ids, _ = exec_session(url, stdin=True)
    s.send(ids["stdin"], b"one\n")
    s.wait(lambda: b"out:one\n" in s.data[ids["stdout"]] and b"err:one\n" in s.data[ids["stderr"]])
    s.send(ids["stdin"], b"", fin=True)  # stdin_once: closes the container's stdin
    finish(s, ids)
    assert s.data[ids["stdout"]] == b"out:one\nbye\n"
    assert json.loads(s.data[ids["error"]])["status"] == "Success"
    s.close()
    assert cenv.wait_exit(cid).exit_code == 0


def test_attach_receives_output_of_a_running_container(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ticker", command=["sh", "-c", "i=0; while :; do echo tick$i; "
                                                       "i=$((i+1)); sleep 0.1; done"])
    s, ids, _ = exec_session(attach_url(cenv, cid, stderr=False), stderr=False)
    s.wait(lambda: s.data[ids["stdout"]].count(b"\n") >= 3)
    assert s.data[ids["stdout"]].startswith(b"tick")
    s.close()
    # Detaching leaves the container running.
    assert cenv.state(cid) == pb.CONTAINER_RUNNING


def test_attach_tty(cenv):
    pod = cenv.run_pod()
    cfg = cenv.config("shell", command=["sh"])
    cfg.stdin = True
    cfg.tty = True
    cid = cenv.create(pod, config=cfg)
    cenv.start(cid)
    s, ids, _ = exec_session(attach_url(cenv, cid, stdin=True, stderr=False, tty=True),
                             stdin=True, stderr=False)
    resize = s.open_stream("resize")
    s.wait(lambda: resize in s.replied)
    s.send(resize, b'{"Width":77,"Height":22}')
    s.send(ids["stdin"], b"stty size; echo tty-$((6*7))\n")
    s.wait(lambda: b"tty-42" in s.data[ids["stdout"]] and b"22 77" in s.data[ids["stdout"]])
    s.send(ids["stdin"], b"exit\n")
    finish(s, ids)
    s.close()


def test_attach_to_a_missing_container(cenv):
    e = rpc_error(attach_url, cenv, "0" * 64)
    assert e.code() == grpc.StatusCode.NOT_FOUND


# ---- crictl (the Go client kubelet's tooling uses); skipped without crictl ----

needs_crictl = pytest.mark.skipif(not os.access(CRICTL, os.X_OK), reason="crictl is not installed")


def crictl(env):
    return [CRICTL, "--runtime-endpoint", "unix://" + env.d.sock, "--timeout", "30s"]


def read_pty(master, proc, timeout=60):
    import select
    import time
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


@needs_crictl
def test_crictl_exec_tty(cenv):
    cid = running(cenv)
    master, slave = os.openpty()
    p = subprocess.Popen(crictl(cenv) + ["exec", "-it", cid, "sh", "-c",
                                         "[ -t 0 ] && echo is-a-tty; stty size"],
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        out = read_pty(master, p)
        assert p.wait(timeout=30) == 0, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    assert b"is-a-tty" in out, out


@needs_crictl
def test_crictl_attach(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "ticker", command=["sh", "-c", "sleep 1; for i in 1 2 3 4 5 6 7 8; do "
                                                       "echo tick$i; sleep 0.2; done"])
    r = subprocess.run(crictl(cenv) + ["attach", cid], capture_output=True, timeout=60)
    assert b"tick8\n" in r.stdout, r


@needs_crictl
def test_crictl_port_forward(pfenv):
    import time
    pod = pod_with_own_netns(pfenv)
    reply_server(pfenv, pod, 8080)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    p = subprocess.Popen(crictl(pfenv) + ["port-forward", pod, "%d:8080" % local],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", local), timeout=10)
                break
            except OSError:
                assert time.monotonic() < deadline and p.poll() is None, "crictl never listened"
                time.sleep(0.1)
        with conn:
            conn.sendall(b"via-crictl\n")
            got = b""
            while not got.endswith(b"\n"):
                chunk = conn.recv(100)
                if not chunk:
                    break
                got += chunk
        assert got == b"pod got via-crictl\n"
    finally:
        p.terminate()
        p.wait(timeout=10)
