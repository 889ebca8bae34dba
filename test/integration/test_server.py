"""The foundation: transport, method table, runtime RPCs, configuration, signals."""
import json
import os
import random
import signal
import socket
import stat
import subprocess
import threading
import time

import grpc
import pytest

from cri_client import CRIClient, SERVICES, pb
from crisp_daemon import CRISP, CrispDaemon


def test_version_fields_are_all_set(crisp):
    v = crisp.client.call("Version", pb.VersionRequest(version="0.1.0"))
    assert v.runtime_name == "crisp"
    assert v.runtime_api_version == "v1"
    assert v.version and v.runtime_version


def test_status_network_not_ready_without_cni_config(crisp):
    st = crisp.client.call("Status", pb.StatusRequest()).status
    conds = {c.type: c for c in st.conditions}
    assert conds["RuntimeReady"].status
    assert not conds["NetworkReady"].status
    assert conds["NetworkReady"].reason == "NetworkPluginNotReady"
    assert crisp.cni_dir in conds["NetworkReady"].message


def test_status_network_ready_with_cni_config(crisp):
    conf = {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "loopback"}]}
    with open(os.path.join(crisp.cni_dir, "10-t.conflist"), "w") as f:
        json.dump(conf, f)
    st = crisp.client.call("Status", pb.StatusRequest()).status
    assert {c.type: c.status for c in st.conditions}["NetworkReady"]


def test_status_verbose_reports_uptime_config_files_and_monitors(crisp):
    drop = os.path.join(crisp.conf_dir, "50-x.conf")
    with open(drop, "w") as f:
        f.write("[crisp]\n")
    crisp.restart()
    info = crisp.client.call("Status", pb.StatusRequest(verbose=True)).info
    assert 0 <= json.loads(info["uptime"]) < 60
    assert json.loads(info["configFiles"]) == [crisp.conf_file, drop]
    assert json.loads(info["monitorsAlive"]) == 0
    assert "uptime" not in crisp.client.call("Status", pb.StatusRequest()).info


def test_status_verbose_reports_effective_config(crisp):
    r = crisp.client.call("Status", pb.StatusRequest(verbose=True))
    cfg = json.loads(r.info["config"])
    assert cfg["crisp"]["listen"] == crisp.sock
    assert cfg["crisp"]["root"] == crisp.root
    assert not crisp.client.call("Status", pb.StatusRequest()).info


def test_status_lists_every_runtime_handler_with_honest_features(crisp_factory):
    """One handler per [runtime.<name>] group and one for the default (the empty name); crisp
    stages recursive read-only binds itself whatever the runtime (so says yes for each, this
    kernel having mount_setattr), runs pods in user namespaces with id-mapped mounts it makes
    itself (so says yes for each; with the host's network it refuses them, so says no there),
    and does Strict supplemental groups with ContainerUser in ContainerStatus (so says yes)."""
    d = crisp_factory("[runtime.slow]\npath = /usr/bin/runc\n")
    resp = d.client.call("Status", pb.StatusRequest())
    assert [h.name for h in resp.runtime_handlers] == ["", "crun", "runc", "slow"]
    for h in resp.runtime_handlers:
        assert h.features.recursive_read_only_mounts, h.name
        assert h.features.user_namespaces, h.name
    assert resp.features.supplemental_groups_policy
    assert not resp.features.user_namespaces_host_network
    assert not resp.features.mount_options


def test_runtime_config_reports_cgroup_driver(crisp_factory):
    d = crisp_factory()
    assert d.client.call("RuntimeConfig").linux.cgroup_driver == pb.CGROUPFS
    d2 = crisp_factory("[runtime]\ncgroup-driver = systemd\n")
    assert d2.client.call("RuntimeConfig").linux.cgroup_driver == pb.SYSTEMD


def test_update_runtime_config_keeps_pod_cidr(crisp):
    req = pb.UpdateRuntimeConfigRequest(
        runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.244.1.0/24")))
    crisp.client.call("UpdateRuntimeConfig", req)
    info = crisp.client.call("Status", pb.StatusRequest(verbose=True)).info
    assert json.loads(info["network"])["podCIDR"] == "10.244.1.0/24"
    crisp.restart()
    info = crisp.client.call("Status", pb.StatusRequest(verbose=True)).info
    assert json.loads(info["network"])["podCIDR"] == "10.244.1.0/24"


def test_image_fs_info_answers(crisp):
    crisp.client.call("ImageFsInfo", pb.ImageFsInfoRequest())


def test_unimplemented_method_is_named(crisp):
    with pytest.raises(grpc.RpcError) as e:
        crisp.client.call("CheckpointPod", pb.CheckpointPodRequest(pod_sandbox_id="x"))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CheckpointPod" in e.value.details()


def test_unknown_method_is_unimplemented(crisp):
    with pytest.raises(grpc.RpcError) as e:
        crisp.client.raw("/runtime.v1.RuntimeService/NoSuchThing", b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "NoSuchThing" in e.value.details()


def test_garbage_bytes_are_invalid_argument(crisp):
    with pytest.raises(grpc.RpcError) as e:
        crisp.client.raw("/runtime.v1.RuntimeService/Version", b"\xff\xff\xff\xff")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "VersionRequest" in e.value.details()


def test_random_payloads_never_crash_crisp(crisp):
    rng = random.Random(1234)
    names = sorted(SERVICES)
    for _ in range(300):
        name = rng.choice(names)
        service, _desc = SERVICES[name]
        payload = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 64)))
        try:
            crisp.client.raw("/%s/%s" % (service, name), payload, timeout=5)
        except grpc.RpcError as e:
            assert e.code() != grpc.StatusCode.UNAVAILABLE, crisp.log_tail()
    assert crisp.proc.poll() is None
    crisp.client.call("Version")


def test_oversized_message_is_refused_and_crisp_lives(crisp):
    big = pb.VersionRequest(version="x" * (17 * 1024 * 1024))
    with pytest.raises(grpc.RpcError) as e:
        crisp.client.call("Version", big)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    crisp.client.call("Version")


def test_many_concurrent_calls(crisp):
    futures = [crisp.client.future("Version", pb.VersionRequest()) for _ in range(200)]
    assert all(f.result().runtime_name == "crisp" for f in futures)


def test_socket_and_directories_are_private(crisp):
    assert stat.S_IMODE(os.stat(crisp.sock).st_mode) == 0o660
    assert stat.S_ISSOCK(os.stat(crisp.sock).st_mode)
    for d in (crisp.root, crisp.run_root):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_second_instance_is_refused(crisp_factory):
    d = crisp_factory()
    second = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert second.returncode != 0
    assert "already serving" in second.stderr
    d.client.call("Version")  # the first one still owns its socket


def test_sigterm_exits_zero(crisp):
    crisp.client.call("Version")
    assert crisp.stop() == 0
    assert "stopped" in crisp.log_tail()


def idle_connection(sock_path):
    """A client that opens an HTTP/2 connection, says its preface, reads the server's first
    frame header (so gRPC has taken the connection on before the test goes on: a stop need
    not deal with one it has not accepted yet) and then never reads again."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    s.settimeout(30)
    header = b""
    while len(header) < 9:
        chunk = s.recv(9 - len(header))
        assert chunk, "crisp closed the connection before its SETTINGS"
        header += chunk
    assert header[3] == 4, "the server's first frame is not SETTINGS: %r" % header
    s.settimeout(None)
    return s


def test_a_client_that_stops_reading_does_not_hold_up_a_stop(crisp_factory):
    d = crisp_factory(start=False)
    with open(os.path.join(d.conf_dir, "50-grace.conf"), "w") as f:
        f.write("[crisp]\nshutdown-grace = 120\n")
    d.start()
    idle = idle_connection(d.sock)
    try:
        d.client.call("Version")
        # It never answers the GOAWAY: crisp closes its connection once no call is left,
        # rather than wait out the two minutes of grace (stop() gives up after 60 s).
        assert d.stop(timeout=60) == 0
    finally:
        idle.close()
    log = open(d.log_path).read()
    assert "every call has ended: closing the connections clients left open" in log
    assert "grace period over" not in log


def test_sighup_reloads_log_level(crisp):
    with open(os.path.join(crisp.conf_dir, "50-quiet.conf"), "w") as f:
        f.write("[crisp]\nlog-level = error\n")
    crisp.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload: log level 'error'" not in crisp.log_tail():
        assert time.monotonic() < deadline, crisp.log_tail()
        time.sleep(0.05)
    crisp.client.call("Version")


def test_sighup_names_each_key_that_needs_a_restart(crisp):
    with open(os.path.join(crisp.conf_dir, "50-changes.conf"), "w") as f:
        f.write("[crisp]\nlog-level = info\nshutdown-grace = 7\n")
    crisp.proc.send_signal(signal.SIGHUP)
    want = "reload: [crisp] shutdown-grace changed; takes effect at the next start"
    deadline = time.monotonic() + 10
    while want not in crisp.log_tail():
        assert time.monotonic() < deadline, crisp.log_tail()
        time.sleep(0.05)
    log = crisp.log_tail()
    assert "reload: log level 'info'" in log
    # Applied at once, so not among what waits for a restart; nothing else is named.
    assert "log-level changed" not in log
    assert log.count("takes effect at the next start") == 1, log
    crisp.client.call("Version")


def test_sighup_with_broken_config_keeps_running(crisp):
    with open(os.path.join(crisp.conf_dir, "50-bad.conf"), "w") as f:
        f.write("[crisp]\nlog-level = loud\n")
    crisp.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "keeping the running configuration" not in crisp.log_tail():
        assert time.monotonic() < deadline, crisp.log_tail()
        time.sleep(0.05)
    crisp.client.call("Version")


def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(20)
    return path, s


def start_with_env(d, env):
    """Starts d with ENV added to its environment (the harness passes on os.environ)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        d.start()
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def test_ready_is_notified_to_systemd(tmp_path):
    path, s = notify_socket(tmp_path)
    d = CrispDaemon(str(tmp_path / "d"))
    try:
        start_with_env(d, {"NOTIFY_SOCKET": path})
        assert s.recv(256) == b"READY=1"
        d.stop()
        assert s.recv(256) == b"STOPPING=1"
    finally:
        d.cleanup()
        s.close()


def datagrams_for(s, seconds):
    got = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            got.append(s.recv(256))
        except socket.timeout:
            break
    return got


class CrispNamedInWatchdogPid(CrispDaemon):
    """systemd names the main pid in $WATCHDOG_PID: a shell sets it to its own pid, then
    becomes crisp."""

    def command(self, *extra):
        return ["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh", *super().command(*extra)]


@pytest.mark.parametrize("pid", ["ours", "unset", "other"])
def test_watchdog_pings_at_half_the_interval(tmp_path, pid):
    path, s = notify_socket(tmp_path)
    cls = CrispNamedInWatchdogPid if pid == "ours" else CrispDaemon
    d = cls(str(tmp_path / "d"))
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    if pid == "other":
        env["WATCHDOG_PID"] = "1"
    try:
        start_with_env(d, env)
        assert s.recv(256) == b"READY=1"
        got = datagrams_for(s, 2.0)
        pings = got.count(b"WATCHDOG=1")
        assert set(got) <= {b"WATCHDOG=1"}, got
        if pid == "other":
            assert pings == 0 and "watchdog: on" not in d.log_tail()
        else:
            # Every 200 ms: about 10 in 2 s; an order of magnitude either way is a failure.
            assert 3 <= pings <= 40, got
            assert "watchdog: on" in d.log_tail()
        d.client.call("Version")
    finally:
        d.cleanup()
        s.close()


# Configuration: precedence and validation, through `crisp config` and start-up.

def effective(d, *flags):
    out = subprocess.run(d.command(*flags, "config"), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out


def value_of(text, group, key):
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            current = line.strip("[]")
        elif current == group and line.startswith(key + " ="):
            return line.split("=", 1)[1].strip()
    return None


def test_config_precedence_files_dropins_flags(tmp_path):
    d = CrispDaemon(str(tmp_path), "[crisp]\nlog-level = warning\n[streaming]\nport = 1111\n")
    assert value_of(effective(d).stdout, "crisp", "log-level") == "warning"
    with open(os.path.join(d.conf_dir, "20-b.conf"), "w") as f:
        f.write("[crisp]\nlog-level = debug\n")
    with open(os.path.join(d.conf_dir, "10-a.conf"), "w") as f:
        f.write("[crisp]\nlog-level = error\n[streaming]\nport = 2222\n")
    with open(os.path.join(d.conf_dir, "30-c.conf.disabled"), "w") as f:
        f.write("[crisp]\nlog-level = info\n")
    out = effective(d).stdout
    assert value_of(out, "crisp", "log-level") == "debug"  # 20-b after 10-a; .disabled ignored
    assert value_of(out, "streaming", "port") == "2222"
    out = effective(d, "--log-level", "info", "--streaming-port", "3333").stdout
    assert value_of(out, "crisp", "log-level") == "info"
    assert value_of(out, "streaming", "port") == "3333"


def test_config_output_is_a_valid_config_file(tmp_path):
    d = CrispDaemon(str(tmp_path / "a"), "[runtime]\ncgroup-driver = systemd\n")
    text = effective(d).stdout
    d2 = CrispDaemon(str(tmp_path / "b"))
    with open(d2.conf_file, "w") as f:
        f.write(text)
    assert effective(d2).stdout.split("\n", 3)[-1] == text.split("\n", 3)[-1]


def test_unknown_key_is_warned_not_fatal(tmp_path):
    d = CrispDaemon(str(tmp_path), "[crisp]\nno-such-key = 1\n")
    out = effective(d)
    assert "no-such-key" in out.stderr and "ignoring" in out.stderr


@pytest.mark.parametrize("group,key,value", [
    ("crisp", "log-level", "loud"),
    ("crisp", "shutdown-grace", "-4"),
    ("runtime", "cgroup-driver", "upstart"),
    ("streaming", "port", "70000"),
    ("crisp", "root", "relative/dir"),
])
def test_invalid_value_stops_start_up_naming_it(tmp_path, group, key, value):
    d = CrispDaemon(str(tmp_path))
    bad = os.path.join(d.conf_dir, "90-bad.conf")
    with open(bad, "w") as f:
        f.write("[%s]\n%s = %s\n" % (group, key, value))
    out = subprocess.run(d.command(), capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert bad in out.stderr and key in out.stderr and value in out.stderr
    assert not os.path.exists(d.sock)


def test_help_documents_every_option():
    out = subprocess.run([CRISP, "--help"], capture_output=True, text=True).stdout
    for opt in ("--config", "--config-dir", "--listen", "--root", "--run-root", "--log-level",
                "--cgroup-driver", "--default-runtime", "--cni-config-dir", "--cni-plugin-dir",
                "--streaming-address", "--streaming-port", "config", "version"):
        assert opt in out


def test_version_command():
    out = subprocess.run([CRISP, "version"], capture_output=True, text=True)
    assert out.returncode == 0 and "crisp version" in out.stdout


@pytest.mark.parametrize("argv,named", [(["bogus"], "unknown command 'bogus'"),
                                        (["check", "extra"], "unexpected argument 'extra'")])
def test_command_line_mistakes_name_the_word(argv, named):
    out = subprocess.run([CRISP] + argv, capture_output=True, text=True)
    assert out.returncode == 2 and named in out.stderr, out


# A slow call (RunPodSandbox held inside a CNI plugin) must not hold up any other call, and
# a client's deadline must end it for the client.

@pytest.fixture
def slow_cni(crisp_factory, tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    plugins = tmp_path / "plugins"
    markers = tmp_path / "markers"
    plugins.mkdir()
    markers.mkdir()
    os.symlink(os.path.join(here, "cni_test_plugin.py"), str(plugins / "crisp-test"))
    d = crisp_factory("[network]\ncni-plugin-dirs = %s\n" % plugins, start=False)
    conf = {"cniVersion": "1.0.0", "name": "slow",
            "plugins": [{"type": "crisp-test", "markerDir": str(markers), "sleep": 60}]}
    with open(os.path.join(d.cni_dir, "10-slow.conflist"), "w") as f:
        json.dump(conf, f)
    (markers / "pause-ADD").touch()
    d.start()
    yield d, markers
    for name in ("pause-ADD", "pause-DEL"):
        try:
            (markers / name).unlink()
        except FileNotFoundError:
            pass


def wait_for(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.02)


def pod_request(name):
    return pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=name + "-uid", namespace="ns")))


def test_slow_call_does_not_block_others(slow_cni):
    d, markers = slow_cni
    slow = d.client.future("RunPodSandbox", pod_request("slow"), timeout=120)
    wait_for(str(markers / "ADD"))  # the pod is now held inside the plugin
    for _ in range(20):
        assert d.client.call("Version", timeout=10).runtime_name == "crisp"
        d.client.call("ListPodSandbox", timeout=10)
    assert not slow.done()  # everything above was answered while it was in flight
    (markers / "pause-ADD").unlink()
    pod_id = slow.result().pod_sandbox_id
    d.client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    d.client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_deadline_ends_a_slow_call(slow_cni):
    d, markers = slow_cni
    with pytest.raises(grpc.RpcError) as e:
        d.client.call("RunPodSandbox", pod_request("late"), timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    d.client.call("Version", timeout=10)
    # kubelet retries after a deadline; the retry gets the first call's pod, not an error.
    (markers / "pause-ADD").unlink()
    pod_id = d.client.call("RunPodSandbox", pod_request("late"), timeout=60).pod_sandbox_id
    pods = d.client.call("ListPodSandbox").items
    assert [p.id for p in pods] == [pod_id]
    d.client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    d.client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_a_call_in_flight_at_a_stop_is_answered_then_idle_connections_close(slow_cni):
    d, markers = slow_cni
    idle = idle_connection(d.sock)
    try:
        slow = d.client.future("RunPodSandbox", pod_request("inflight"), timeout=120)
        wait_for(str(markers / "ADD"))  # held inside the plugin
        # a second after the SIGTERM (twenty ticks of the idle watch) the plugin goes on
        release = threading.Timer(1.0, (markers / "pause-ADD").unlink)
        release.start()
        try:
            assert d.stop(keep_client=True) == 0
        finally:
            release.join()
        pod_id = slow.result().pod_sandbox_id  # answered, not cut off by the closing
    finally:
        idle.close()
    log = open(d.log_path).read()
    assert "grace period over" not in log
    assert log.index("RunPodSandbox: ok") < log.index("every call has ended")
    d.start()
    d.client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    d.client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


# Decodable but hostile requests: every field of every message filled with odd values.

ODD_STRINGS = ["", "..", "../../etc/passwd", "/", "a" * 5000, "\x00", "x\ny", "${HOME}",
               "%s%n", "sha256:" + "f" * 64, "-1", "☃"]


def random_message(msg, rng, depth=0):
    for field in msg.DESCRIPTOR.fields:
        if rng.random() < 0.4:
            continue
        repeated = field.label == field.LABEL_REPEATED
        count = rng.randrange(0, 4) if repeated else 1
        for _ in range(count):
            if field.type == field.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
                key = rng.choice(ODD_STRINGS)
                value_field = field.message_type.fields_by_name["value"]
                if value_field.type == value_field.TYPE_MESSAGE:
                    random_message(getattr(msg, field.name)[key], rng, depth + 1)
                else:
                    getattr(msg, field.name)[key] = rng.choice(ODD_STRINGS)
                continue
            if field.type == field.TYPE_MESSAGE:
                if depth > 3:
                    break
                sub = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                random_message(sub, rng, depth + 1)
                continue
            if field.type == field.TYPE_STRING:
                value = rng.choice(ODD_STRINGS)
            elif field.type == field.TYPE_BYTES:
                value = rng.choice(ODD_STRINGS).encode()
            elif field.type == field.TYPE_BOOL:
                value = rng.random() < 0.5
            elif field.type == field.TYPE_ENUM:
                value = rng.choice([v.number for v in field.enum_type.values])
            elif field.type in (field.TYPE_UINT32, field.TYPE_UINT64):
                value = rng.choice([0, 1, 2**31, 2**32 - 1])
            else:
                value = rng.choice([0, -1, 1, 2**31 - 1, -2**31])
            if repeated:
                getattr(msg, field.name).append(value)
            else:
                setattr(msg, field.name, value)


# PullImage would go to whatever registry a random name says: never send that anywhere.
NO_FUZZ = {"PullImage", "PortForward"}


def test_hostile_decodable_requests_never_crash_crisp(crisp):
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "4321")))
    names = sorted(n for n in SERVICES if n not in NO_FUZZ and not n.startswith("Stream")
                   and n != "GetContainerEvents")
    for _ in range(int(os.environ.get("FUZZ_N", "400"))):
        name = rng.choice(names)
        req = getattr(pb, SERVICES[name][1].input_type.name)()
        random_message(req, rng)
        try:
            crisp.client.call(name, req, timeout=30)
        except grpc.RpcError as e:
            assert e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN), \
                "%s: %s\n%s" % (name, e.details(), crisp.log_tail())
    assert crisp.proc.poll() is None
    crisp.client.call("Version")


def test_pod_loopback_is_up_without_a_loopback_plugin(crisp_factory, tmp_path):
    """A network config need not list the loopback plugin: crisp brings lo up itself, as
    containerd and CRI-O do (port-forward connects to 127.0.0.1 inside the pod)."""
    here = os.path.dirname(os.path.abspath(__file__))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    os.symlink(os.path.join(here, "cni_test_plugin.py"), str(plugins / "crisp-test"))
    d = crisp_factory("[network]\ncni-plugin-dirs = %s\n" % plugins, start=False)
    conf = {"cniVersion": "1.0.0", "name": "nolo", "plugins": [{"type": "crisp-test"}]}
    with open(os.path.join(d.cni_dir, "10-nolo.conflist"), "w") as f:
        json.dump(conf, f)
    d.start()
    pod_id = d.client.call("RunPodSandbox", pod_request("lo")).pod_sandbox_id
    try:
        pin = os.path.join(d.run_root, "ns", pod_id + "-net")
        out = subprocess.run(["nsenter", "--net=" + pin, "ip", "-o", "link", "show", "lo"],
                             capture_output=True, text=True, check=True).stdout
        assert ",UP" in out, out
    finally:
        d.client.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        d.client.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
