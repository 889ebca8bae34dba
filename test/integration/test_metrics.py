"""Prometheus metrics ([metrics]): off by default; when on, GET /metrics answers the text
format 0.0.4 and its values match what the test did over CRI; anything else is a 404."""
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import pytest

from container_harness import (SLEEPER, cenv, make_env, monitors,  # noqa: F401
                               push_extra_images, wait_for)
from cri_client import pb
from crisp_daemon import CRISP
from image_harness import pull

METRICS_ON = "[metrics]\nenable = true\nport = 0\n"
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def metrics_url(d, timeout=10):
    """The URL crisp logged for its metrics endpoint (port 0: the one it bound)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(d.log_path, errors="replace") as f:
            m = re.search(r"metrics on (http://\S+/metrics)", f.read())
        if m:
            return m.group(1)
        time.sleep(0.05)
    raise AssertionError("crisp logged no metrics URL:\n" + d.log_tail())


def unescape(v):
    return re.sub(r'\\(.)', lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse(text):
    """{(name, frozenset of (label, value))): value}, checking every line's shape, and the
    TYPE of each family {name: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset((k, unescape(v)) for k, v in LABEL_RE.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(r.read().decode())


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture
def menv(crisp_factory, registry, tmp_path):
    images = push_extra_images(registry)
    logdir = str(tmp_path / "logs")
    os.makedirs(logdir)
    env = make_env(crisp_factory, registry, images, logdir, config=METRICS_ON)
    yield env
    assert not env.d.check_leaks()


def test_metrics_match_what_was_done(menv, registry):
    url = metrics_url(menv.d)
    before, types = scrape(url)
    assert types["crisp_grpc_requests_total"] == "counter"
    assert types["crisp_grpc_request_duration_seconds"] == "histogram"
    assert types["crisp_pods"] == "gauge"
    assert value(before, "crisp_startup_recovery_seconds") > 0

    c = menv.c
    for _ in range(3):
        c.call("Version", pb.VersionRequest())
    with pytest.raises(grpc.RpcError) as e:
        c.call("ContainerStatus", pb.ContainerStatusRequest(container_id="0" * 64))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    pull(menv.d, "%s/multilayer:latest" % registry.host)
    pod = menv.run_pod()
    menv.run(pod, "sleeper", command=SLEEPER)
    menv.create(pod, "idle", command=SLEEPER)
    menv.output(pod, ["true"], name="done")

    after, _ = scrape(url)
    rpc = "crisp_grpc_requests_total"
    assert delta(before, after, rpc, method="Version", code="OK") == 3
    assert delta(before, after, rpc, method="ContainerStatus", code="NOT_FOUND") == 1
    assert delta(before, after, rpc, method="RunPodSandbox", code="OK") == 1
    assert delta(before, after, rpc, method="CreateContainer", code="OK") == 3
    assert delta(before, after, rpc, method="StartContainer", code="OK") == 2
    assert delta(before, after, rpc, method="PullImage", code="OK") == 1
    h = "crisp_grpc_request_duration_seconds"
    assert delta(before, after, h + "_count", method="Version") == 3
    assert delta(before, after, h + "_bucket", method="Version", le="+Inf") == 3
    assert delta(before, after, h + "_sum", method="Version") > 0
    assert delta(before, after, h + "_count", method="ContainerStatus") >= 1

    assert delta(before, after, "crisp_image_pulls_total", result="success") == 1
    assert delta(before, after, "crisp_image_pulls_total", result="failure") == 0
    assert delta(before, after, "crisp_image_pull_duration_seconds_count") == 1
    assert delta(before, after, "crisp_image_pull_duration_seconds_sum") > 0
    assert delta(before, after, "crisp_image_pull_bytes_total") > 0

    assert value(after, "crisp_pods", state="ready") == 1
    assert value(after, "crisp_pods", state="notready") == 0
    assert value(after, "crisp_containers", state="running") == 1
    assert value(after, "crisp_containers", state="created") == 1
    assert value(after, "crisp_containers", state="exited") == 1
    assert value(after, "crisp_containers_oom_killed") == 0
    assert value(after, "crisp_monitors_alive") == 1
    # The monitors' memory, once the exited container's monitor has finished: then the
    # created container's and the running one's are left.
    wait_for(lambda: len(monitors(menv.d.run_root)) == 2, 20, what="two monitors left")
    now, _ = scrape(url)
    rss = 0
    for pid in monitors(menv.d.run_root):
        with open("/proc/%d/status" % pid) as f:
            rss += int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
    got = value(now, "crisp_monitors_resident_bytes")
    assert rss > 0 and abs(got - rss) <= max(256 * 1024, 0.2 * rss), (got, rss)
    assert value(after, "crisp_streaming_connections_active") == 0
    assert value(after, "crisp_startup_recovery_seconds") == \
        value(before, "crisp_startup_recovery_seconds")

    # A second pull of the same image downloads nothing; a failed one counts as a failure.
    pull(menv.d, "%s/multilayer:latest" % registry.host)
    with pytest.raises(grpc.RpcError):
        pull(menv.d, "%s/not/there:latest" % registry.host)
    again, _ = scrape(url)
    assert delta(after, again, "crisp_image_pull_bytes_total") == 0
    assert delta(after, again, "crisp_image_pulls_total", result="success") == 1
    assert delta(after, again, "crisp_image_pulls_total", result="failure") == 1
    assert delta(after, again, "crisp_grpc_requests_total", method="PullImage",
                 code="NOT_FOUND") == 1


def raw_request(url, head):
    m = re.match(r"http://([^:/]+):(\d+)/", url)
    with socket.create_connection((m.group(1), int(m.group(2))), timeout=10) as s:
        s.sendall(head)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data.decode(errors="replace")
            data += chunk


def test_anything_but_get_metrics_is_not_found(crisp_factory):
    d = crisp_factory(METRICS_ON)
    url = metrics_url(d)
    base = url[:-len("/metrics")]
    for path in ("/", "/metricsx", "/exec/token"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=10)
        assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=10)
    assert e.value.code == 404
    assert raw_request(url, b"GET /metrics\r\n\r\n").startswith("HTTP/1.1 404 ")
    # exactly the bound and no end in sight (more would be unread, and the close a reset)
    too_big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (8192 - 26)
    assert len(too_big) == 8192
    assert raw_request(url, too_big).startswith("HTTP/1.1 431 ")
    # and the endpoint still answers
    samples, _ = scrape(url)
    assert value(samples, "crisp_pods", state="ready") == 0


def test_metrics_are_off_by_default(crisp):
    with open(crisp.log_path) as f:
        assert "metrics on" not in f.read()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", 9090), timeout=5).close()
    out = subprocess.run([CRISP, "--config", crisp.conf_file, "--config-dir", crisp.conf_dir,
                          "config"], check=True, capture_output=True, text=True).stdout
    section = out.split("[metrics]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^enable ?= ?false$", section, re.M)
    assert re.search(r"^address ?= ?127\.0\.0\.1$", section, re.M)
    assert re.search(r"^port ?= ?9090$", section, re.M)
