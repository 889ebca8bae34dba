"""Bounded, validated input: a pod's log_directory and a container's log_path must be clean and
may not cross a symbolic link; pod and container names are checked alike (no '/', no NUL, at
most 253 bytes); labels and annotations are bounded at 256 KiB each per object; and ExecSync's
reply always fits a client that takes 16 MiB, like the kubelet.  A rejected request leaves
nothing behind: no pod or container listed, no namespace pin, no state directory, no log
directory made."""
import os

import grpc
import pytest

from container_harness import MiB, SLEEPER, cenv, log_lines, rpc_error, wait_for  # noqa: F401
from cri_client import LOCAL_SUBCHANNELS, SERVICES, pb

KiB = 1024
LIMIT = 256 * KiB
EXEC_OUTPUT_MAX = 16 * MiB - 1024  # what crisp keeps of stdout and stderr together


def traces(d):
    """What a pod or container leaves in the daemon's directories."""
    found = []
    for base in (d.root, d.run_root):
        for sub in ("pods", "ns", "containers"):
            path = os.path.join(base, sub)
            if os.path.isdir(path):
                found += [os.path.join(sub, e) for e in os.listdir(path)]
    return sorted(found)


def pods(cenv):
    return cenv.c.call("ListPodSandbox", pb.ListPodSandboxRequest()).items


def run_pod_request(cenv, cfg):
    return cenv.c.call("RunPodSandbox", pb.RunPodSandboxRequest(config=cfg), timeout=60)


def expect_invalid(fn, *args, needle=None, **kw):
    e = rpc_error(fn, *args, **kw)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
    if needle is not None:
        assert needle in e.details(), e.details()
    return e


def expect_pod_rejected(cenv, cfg, needle):
    before = traces(cenv.d)
    expect_invalid(run_pod_request, cenv, cfg, needle=needle)
    assert not pods(cenv)
    assert traces(cenv.d) == before


# ---- log_directory and log_path ----

def test_traces_see_a_pod(cenv):
    """The control for the checks below: a pod that is made shows up in traces()."""
    assert traces(cenv.d) == []
    cenv.run_pod("seen")
    assert any(t.startswith("pods/") for t in traces(cenv.d))
    assert any(t.startswith("ns/") for t in traces(cenv.d))


@pytest.mark.parametrize("bad", ["relative/logs", "{tmp}/a/../../../etc/crisp-test",
                                 "{tmp}//logs", "{tmp}/logs/", "{tmp}/./logs"])
def test_log_directory_must_be_absolute_and_clean(cenv, tmp_path, bad):
    cfg = cenv.pod_config("logdir")
    cfg.log_directory = bad.format(tmp=tmp_path)
    expect_pod_rejected(cenv, cfg, "log_directory")
    assert not os.path.exists("/etc/crisp-test")


def test_log_directory_through_a_symlink_is_rejected(cenv, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "link").symlink_to(outside)
    cfg = cenv.pod_config("logdir")
    cfg.log_directory = str(tmp_path / "link" / "pods" / "logdir")
    expect_pod_rejected(cenv, cfg, "symbolic link")
    assert os.listdir(outside) == []


def test_log_directory_turned_into_a_symlink_before_create(cenv, tmp_path):
    """RunPodSandbox accepts a directory that does not exist yet; when CreateContainer makes it,
    a symlink placed on the way meanwhile is refused, and nothing is made through it."""
    cfg = cenv.pod_config("swapped")
    cfg.log_directory = str(tmp_path / "later" / "swapped")
    pod = run_pod_request(cenv, cfg).pod_sandbox_id
    cenv.pods[pod] = cfg
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "later").symlink_to(outside)
    expect_invalid(cenv.create, pod, "c", command=SLEEPER, needle="symbolic link")
    assert os.listdir(outside) == []
    assert not cenv.list()


@pytest.mark.parametrize("log_path", ["../escape.log", "sub/../../escape.log", "/abs.log",
                                      "sub//c.log", "link/c.log", "file-link.log"])
def test_log_path_must_stay_in_the_log_directory(cenv, tmp_path, log_path):
    pod = cenv.run_pod("lp")
    logdir = cenv.pods[pod].log_directory
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, os.path.join(logdir, "link"))
    os.symlink(outside / "target.log", os.path.join(logdir, "file-link.log"))
    expect_invalid(cenv.create, pod, "c", command=SLEEPER, log_path=log_path,
                   needle="log_path")
    assert os.listdir(outside) == []
    assert not os.path.exists(os.path.join(os.path.dirname(logdir), "escape.log"))
    assert not cenv.list()


def test_log_path_subdirectories_are_made_inside(cenv):
    pod = cenv.run_pod("nested")
    st, lines = cenv.output(pod, ["echo", "hello"], log_path="deep/er/out.log")
    assert st.log_path == os.path.join(cenv.pods[pod].log_directory, "deep/er/out.log")
    assert lines == ["hello"]


# ---- names ----

@pytest.mark.parametrize("field,value", [
    ("name", "a/b"), ("name", "a\0b"), ("name", "x" * 254), ("name", "a b"),
    ("namespace", "kube/system"), ("namespace", "ns\0"), ("uid", "\0uid")])
def test_pod_names_are_validated(cenv, field, value):
    cfg = cenv.pod_config("named")
    setattr(cfg.metadata, field, value)
    expect_pod_rejected(cenv, cfg, field)


def test_pod_name_of_253_bytes_is_accepted(cenv):
    cfg = cenv.pod_config("n" * 253)
    cfg.metadata.uid = "u" * 253
    pod = run_pod_request(cenv, cfg).pod_sandbox_id
    cenv.pods[pod] = cfg
    assert [p.id for p in pods(cenv)] == [pod]


@pytest.mark.parametrize("name", ["a/b", "a\0b", "x" * 254])
def test_container_names_are_validated(cenv, name):
    pod = cenv.run_pod("cn")
    expect_invalid(cenv.create, pod, name, command=SLEEPER, log_path="c.log", needle="name")
    assert not cenv.list()


def test_nul_anywhere_in_a_string_is_rejected(cenv):
    """protobuf-c hands C a string cut at its first NUL; crisp refuses such a request whole."""
    pod = cenv.run_pod("nul")
    e = expect_invalid(cenv.create, pod, "c", command=SLEEPER,
                       labels={"app": "web\0evil"}, needle="NUL")
    assert "config.labels.value" in e.details()
    assert not cenv.list()


# ---- labels and annotations ----

def spread(total, prefix="k"):
    """A map of keys plus values adding up to exactly total bytes."""
    entries, left, i = {}, total, 0
    while left > 0:
        key = "%s%05d" % (prefix, i)
        value = "v" * max(0, min(4096, left - len(key)))
        entries[key] = value
        left -= len(key) + len(value)
        i += 1
    assert sum(len(k) + len(v) for k, v in entries.items()) == total
    return entries


@pytest.mark.parametrize("field", ["annotations", "labels"])
def test_pod_maps_over_the_limit_are_rejected(cenv, field):
    cfg = cenv.pod_config("big", **{field: spread(300 * KiB)})
    e = expect_invalid(run_pod_request, cenv, cfg, needle=field)
    assert "%d bytes" % LIMIT in e.details() and "256 KiB" in e.details()
    assert not pods(cenv)
    assert traces(cenv.d) == []


def test_pod_annotations_at_the_limit_are_accepted(cenv):
    ann = spread(LIMIT)
    pod = cenv.run_pod("full", annotations=ann, labels=spread(LIMIT, "l"))
    st = cenv.c.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
    assert dict(st.annotations) == ann
    cfg = cenv.pod_config("over", annotations=spread(LIMIT + 1))
    expect_invalid(run_pod_request, cenv, cfg, needle="annotations")
    assert [p.id for p in pods(cenv)] == [pod]


@pytest.mark.parametrize("field", ["annotations", "labels"])
def test_container_maps_over_the_limit_are_rejected(cenv, field):
    pod = cenv.run_pod("cbig")
    before = traces(cenv.d)
    e = expect_invalid(cenv.create, pod, "c", command=SLEEPER, needle=field,
                       **{field: spread(300 * KiB)})
    assert "%d bytes" % LIMIT in e.details()
    assert not cenv.list()
    assert traces(cenv.d) == before
    cid = cenv.create(pod, "c", command=SLEEPER, **{field: spread(LIMIT)})
    assert [c.id for c in cenv.list()] == [cid]


# ---- ExecSync's reply ----

def kubelet_like_exec_sync(cenv, cid, cmd):
    """ExecSync from a client with the kubelet's 16 MiB receive limit, on its own channel."""
    channel = grpc.insecure_channel("unix://" + cenv.d.sock,
                                    options=[("grpc.max_receive_message_length", 16 * MiB),
                                             LOCAL_SUBCHANNELS])
    try:
        service, _ = SERVICES["ExecSync"]
        fn = channel.unary_unary("/%s/ExecSync" % service,
                                 request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=None)
        raw, call = fn.with_call(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=60),
                                 timeout=120)
    finally:
        channel.close()
    assert len(raw) + 5 <= 16 * MiB
    truncated = ("crisp-output-truncated", "true") in (call.trailing_metadata() or ())
    return pb.ExecSyncResponse.FromString(raw), truncated


def test_exec_sync_output_is_cut_to_fit_a_16_mib_reply(cenv):
    pod = cenv.run_pod("exec")
    cid = cenv.run(pod, "c", command=SLEEPER)
    r, truncated = kubelet_like_exec_sync(cenv, cid, ["sh", "-c", "dd if=/dev/zero bs=1048576 "
                                                                  "count=20 2>/dev/null; "
                                                                  "echo done >&2"])
    assert truncated
    assert r.exit_code == 0
    assert r.stderr == b"done\n"
    assert len(r.stdout) == EXEC_OUTPUT_MAX - len(r.stderr)
    assert r.stdout == b"\0" * len(r.stdout)
    wait_for(lambda: "output cut to fit" in open(cenv.d.log_path).read(), 5,
             what="the truncation to be logged")


def test_exec_sync_streams_share_the_budget(cenv):
    pod = cenv.run_pod("exec2")
    cid = cenv.run(pod, "c", command=SLEEPER)
    r, truncated = kubelet_like_exec_sync(cenv, cid, [
        "sh", "-c", "dd if=/dev/zero bs=1048576 count=20 2>/dev/null & "
                    "dd if=/dev/zero bs=1048576 count=20 >&2 2>/dev/null; wait; exit 3"])
    assert truncated and r.exit_code == 3
    assert len(r.stdout) == EXEC_OUTPUT_MAX // 2
    assert len(r.stderr) == EXEC_OUTPUT_MAX - EXEC_OUTPUT_MAX // 2


def test_exec_sync_under_the_budget_is_whole(cenv):
    pod = cenv.run_pod("exec3")
    cid = cenv.run(pod, "c", command=SLEEPER)
    r, truncated = kubelet_like_exec_sync(cenv, cid, ["sh", "-c", "dd if=/dev/zero bs=1048576 "
                                                                  "count=8 2>/dev/null; echo tail"])
    assert not truncated
    assert len(r.stdout) == 8 * MiB + 5 and r.stdout.endswith(b"tail\n")
    assert "output cut to fit" not in open(cenv.d.log_path).read()
