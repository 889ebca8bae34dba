"""CheckpointContainer and the restore of a checkpoint at CreateContainer and StartContainer,
against the real daemon, runc and criu.  Whether CRIU works here is decided by running `criu
check` in the test itself: where it works a checkpoint must succeed, its archive must have the
CRI-O layout, and a new pod's container made from it must go on counting from where it was;
where it does not, crisp must answer FAILED_PRECONDITION carrying CRIU's own words, and the
success parts are skipped with that reason.  Every refusal leaves nothing behind (the cenv
fixture's leak check, and the archive's directory is compared before and after)."""
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid

import grpc
import pytest

import conmon_harness as H
from container_harness import SLEEPER, alive, cenv, rpc_error, wait_for  # noqa: F401
from cri_client import pb
from image_harness import pull
from leakcheck import Scope

COUNTER = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"]
LAYOUT = {"checkpoint", "config.dump", "spec.dump", "rootfs-diff.tar", "deleted.files"}
CONFIG_KEYS = {"id", "name", "rootfsImage", "rootfsImageRef", "rootfsImageName", "runtime",
               "createdTime", "checkpointedTime"}


def criu_check():
    """(works, what `criu check` said) on this machine."""
    criu = shutil.which("criu")
    if criu is None and os.access("/usr/sbin/criu", os.X_OK):
        criu = "/usr/sbin/criu"
    if criu is None:
        return False, "criu is not installed"
    p = subprocess.run([criu, "check"], capture_output=True, text=True, timeout=60)
    return p.returncode == 0, (p.stdout + "\n" + p.stderr).strip()


def criu_error_lines(said):
    """The lines of `criu check` output crisp's message must carry: its error lines, or the
    last of them when together they pass the ~1 KiB crisp keeps of them."""
    lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln] or lines
    return errors if len("; ".join(errors)) < 900 else errors[-1:]


def assert_carries_criu_reason(details, said):
    for line in criu_error_lines(said):
        assert line[-200:] in details, "CRIU's '%s' is not in: %s" % (line, details)


def assert_restore_refused(err):
    """A restore is refused with CRIU's reason where CRIU cannot work here."""
    works, said = criu_check()
    assert not works, "only where CRIU cannot work is a good restore refused"
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
    if said == "criu is not installed":
        assert "criu is not installed" in err.details()
    else:
        assert_carries_criu_reason(err.details(), said)


def checkpoint(cenv, cid, location, timeout=0, rpc_timeout=120):
    return cenv.c.call("CheckpointContainer",
                       pb.CheckpointContainerRequest(container_id=cid, location=location,
                                                     timeout=timeout),
                       timeout=rpc_timeout)


def assert_running(cenv, cid, pid):
    assert cenv.state(cid) == pb.CONTAINER_RUNNING
    assert alive(pid)


def running_counter(cenv):
    pod = cenv.run_pod()
    cid = cenv.run(pod, "counter", command=COUNTER)
    return pod, cid, cenv.pid(cid)


def test_checkpoint_of_a_running_container(cenv, tmp_path):
    works, said = criu_check()
    _, cid, pid = running_counter(cenv)
    out = tmp_path / "out"
    out.mkdir()
    location = str(out / "checkpoint.tar")
    if not works:
        err = rpc_error(checkpoint, cenv, cid, location)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
        if os.access("/usr/sbin/criu", os.X_OK) or shutil.which("criu"):
            assert_carries_criu_reason(err.details(), said)
        else:
            assert "criu is not installed" in err.details()
        assert os.listdir(out) == [], "a refused checkpoint left %s" % os.listdir(out)
        assert_running(cenv, cid, pid)
        pytest.skip("CRIU cannot work on this machine: " + "; ".join(criu_error_lines(said)))
    # Far enough from 1 that a restarted counter could not be taken for a restored one.
    wait_for(lambda: count_in(cenv, cid) >= 10, timeout=20, what="the counter at 10")
    before = count_in(cenv, cid)
    checkpoint(cenv, cid, location)
    assert os.listdir(out) == ["checkpoint.tar"]
    assert_running(cenv, cid, pid)
    with tarfile.open(location) as tar:
        names = tar.getnames()
        top = {n.split("/")[0] for n in names}
        assert LAYOUT <= top, names
        assert any(n.startswith("checkpoint/") for n in names)
        config = json.load(tar.extractfile("config.dump"))
        spec = json.load(tar.extractfile("spec.dump"))
        deleted = json.load(tar.extractfile("deleted.files"))
        diff = tarfile.open(fileobj=io.BytesIO(tar.extractfile("rootfs-diff.tar").read()))
        diff_names = diff.getnames()
    assert CONFIG_KEYS <= set(config), config
    assert config["id"] == cid and config["name"] == "counter"
    assert spec["process"]["args"] == COUNTER
    assert isinstance(deleted, list)
    assert "tmp/count" in diff_names, diff_names
    assert_restored_counter_continues(cenv, cid, location, before)
    # The same checkpoint as an image (what `buildah add` of the archive makes), restored.
    with open(location, "rb") as f:
        ref = push_checkpoint_image(cenv.registry, f.read())
    pull(cenv.d, ref)
    assert_restored_counter_continues(cenv, cid, ref, before, pod="restored-from-image")


def count_in(cenv, cid):
    res = cenv.exec_sync(cid, ["cat", "/tmp/count"])
    assert res.exit_code == 0, res.stderr
    return int(res.stdout.decode().strip())


def assert_restored_counter_continues(cenv, cid, location, before, pod="restored"):
    """The archive becomes a container of a new pod whose counter goes on from where the
    checkpoint took it (CRIU restored its memory: a new process would start at 1). BEFORE was
    read just before the checkpoint, so the restored count is at least that.  LOCATION may also
    be a checkpoint image's reference; POD names the new pod."""
    pod2 = cenv.run_pod(pod)
    restored = cenv.create(pod2, "restored", image=location, command=SLEEPER)
    assert cenv.state(restored) == pb.CONTAINER_CREATED
    status = cenv.status(restored).status
    assert status.image.image != location  # the image the checkpoint was made from
    cenv.start(restored)
    assert cenv.state(restored) == pb.CONTAINER_RUNNING
    first = count_in(cenv, restored)
    assert first >= before, (first, before)
    wait_for(lambda: count_in(cenv, restored) > first, timeout=10, what="the restored count")
    assert count_in(cenv, cid) > 0  # the original runs on beside it
    cenv.stop(restored)
    assert cenv.state(restored) == pb.CONTAINER_EXITED


@pytest.mark.parametrize("location,why", [
    ("", "location is empty"),
    ("relative/out.tar", "must be an absolute path"),
    ("/tmp/../out.tar", "must be an absolute path"),
    ("/" + "a" * 5000, "longer than"),
    ("/nonexistent-crisp-dir/out.tar", "directory '/nonexistent-crisp-dir'"),
])
def test_checkpoint_refuses_bad_locations(cenv, tmp_path, location, why):
    _, cid, pid = running_counter(cenv)
    before = sorted(os.listdir(tmp_path))
    err = rpc_error(checkpoint, cenv, cid, location)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert why in err.details()
    assert sorted(os.listdir(tmp_path)) == before
    assert_running(cenv, cid, pid)


def test_checkpoint_refuses_a_directory_and_unknown_or_idle_containers(cenv, tmp_path):
    pod, cid, pid = running_counter(cenv)
    target = tmp_path / "adir"
    target.mkdir()
    err = rpc_error(checkpoint, cenv, cid, str(target))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a regular file" in err.details() and "directory" in err.details()
    assert os.listdir(target) == []
    victim = tmp_path / "adir" / "victim"
    victim.write_text("keep")
    link = tmp_path / "link.tar"
    link.symlink_to(victim)
    err = rpc_error(checkpoint, cenv, cid, str(link))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a regular file" in err.details()
    assert victim.read_text() == "keep" and link.is_symlink()
    link.unlink()
    victim.unlink()
    location = str(tmp_path / "out.tar")
    err = rpc_error(checkpoint, cenv, "0" * 64, location)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    created = cenv.create(pod, "idle", command=SLEEPER)
    err = rpc_error(checkpoint, cenv, created, location)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only a running container" in err.details()
    done = cenv.run(pod, "done", command=["true"])
    cenv.wait_exit(done)
    err = rpc_error(checkpoint, cenv, done, location)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is exited" in err.details()
    assert sorted(os.listdir(tmp_path)) == ["adir", "logs"]
    assert_running(cenv, cid, pid)


def write_tar(path, members):
    """A tar of MEMBERS: (name, bytes) for files, (name, None) for directories."""
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def good(image="example.invalid/none:1"):
    """The members of a minimal archive whose config.dump names IMAGE."""
    config = {"id": "a" * 64, "name": "c", "rootfsImageName": image, "rootfsImageRef": image}
    return [("checkpoint", None), ("checkpoint/inventory.img", b"x"),
            ("config.dump", json.dumps(config).encode()),
            ("spec.dump", json.dumps({"ociVersion": "1.0.2"}).encode())]


GOOD = good()


@pytest.mark.parametrize("members,code,why", [
    (GOOD + [("../evil", b"x")], "INVALID_ARGUMENT", "member '../evil' escapes"),
    (GOOD + [("/etc/evil", b"x")], "INVALID_ARGUMENT", "escapes the archive"),
    ([m for m in GOOD if m[0] != "config.dump"], "INVALID_ARGUMENT", "lacks config.dump"),
    ([m for m in GOOD if not m[0].startswith("checkpoint")], "INVALID_ARGUMENT",
     "lacks the checkpoint/ directory"),
    ([m if m[0] != "spec.dump" else ("spec.dump", b"[1, 2") for m in GOOD], "INVALID_ARGUMENT",
     "spec.dump is not a JSON object"),
    (None, "INVALID_ARGUMENT", "is not a tar archive"),
])
def test_restore_refuses_hostile_archives(cenv, tmp_path, members, code, why):
    pod = cenv.run_pod()
    path = str(tmp_path / "ckpt.tar")
    if members is None:
        with open(path, "wb") as f:
            f.write(b"not a tar at all\n" * 100)
    else:
        write_tar(path, members)
    err = rpc_error(cenv.create, pod, "restored", image=path)
    assert err.code() == getattr(grpc.StatusCode, code), err.details()
    assert why in err.details()
    assert not cenv.list()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.tar", "logs"]


def test_restore_of_a_missing_archive_or_a_directory(cenv, tmp_path):
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "restored", image=str(tmp_path / "missing.tar"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "does not exist" in err.details()
    err = rpc_error(cenv.create, pod, "restored", image=str(tmp_path))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a regular file" in err.details()
    assert not cenv.list()


def test_restore_needs_the_image_the_checkpoint_was_made_from(cenv, tmp_path):
    pod = cenv.run_pod()
    path = str(tmp_path / "ckpt.tar")
    write_tar(path, good("example.invalid/never-pulled:1"))
    err = rpc_error(cenv.create, pod, "restored", image=path)
    assert err.code() == grpc.StatusCode.NOT_FOUND, err.details()
    assert "'example.invalid/never-pulled:1'" in err.details()
    assert "pull it first" in err.details()
    write_tar(path, [m for m in GOOD if m[0] != "config.dump"]
              + [("config.dump", json.dumps({"id": "a" * 64}).encode())])
    err = rpc_error(cenv.create, pod, "restored", image=path)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "config.dump names no image" in err.details()
    assert not cenv.list()
    assert sorted(os.listdir(tmp_path)) == ["ckpt.tar", "logs"]


def test_restore_of_a_checkpoint_archive_is_refused_with_the_reason(cenv, tmp_path):
    """Where CRIU cannot work, a restore whose archive and image are fine is refused with
    CRIU's words before anything is made; where it works, this archive's spec.dump (no
    process) is refused once the new container's spec is built, and what was made is undone."""
    works, _ = criu_check()
    pod = cenv.run_pod()
    path = str(tmp_path / "ckpt.tar")
    write_tar(path, good(cenv.busybox))
    if not works:
        err = rpc_error(cenv.create, pod, "restored", image=path)
        assert_restore_refused(err)
        assert not cenv.list()
        assert sorted(os.listdir(tmp_path)) == ["ckpt.tar", "logs"]
        return
    err = rpc_error(cenv.create, pod, "restored", image=path)
    # spec.dump has no process: the archive is refused after the probe, and nothing is left.
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    assert "no usable process" in err.details()
    assert not cenv.list()


def push_checkpoint_image(reg, archive, name="ctest/checkpointed"):
    """An OCI image whose one layer is the checkpoint ARCHIVE (bytes), annotated the way CRI-O
    and `checkpointctl build` mark one; returns its reference.  The layer is the archive
    itself, so the image's files are the archive's members unpacked at / (/checkpoint/...,
    /config.dump, /spec.dump, ...): what `buildah add CTR checkpoint.tar /` makes of it."""
    diff_id = "sha256:" + hashlib.sha256(archive).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": reg.put_blob(name, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": reg.put_blob(name, archive), "size": len(archive)}],
        "annotations": {"io.kubernetes.cri-o.annotations.checkpoint.name": "counter"},
    }
    reg.put_manifest(name, "latest", manifest, manifest["mediaType"])
    return "%s/%s:latest" % (reg.host, name)


def test_restore_of_a_checkpoint_image_is_refused_with_the_reason(cenv, tmp_path):
    """A checkpoint image is read like the archive: where CRIU cannot work its restore is
    refused with CRIU's words before anything is made; where it works, this checkpoint's
    spec.dump (no process) is refused once the spec is built, and what was made is undone."""
    works, _ = criu_check()
    path = str(tmp_path / "ckpt.tar")
    write_tar(path, good(cenv.busybox))
    with open(path, "rb") as f:
        ref = push_checkpoint_image(cenv.registry, f.read())
    pull(cenv.d, ref)
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "restored", image=ref)
    assert "a checkpoint of container 'counter'" in err.details()
    if works:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert "no usable process" in err.details()
    else:
        assert_restore_refused(err)
    assert not cenv.list()
    # An ordinary image is not taken for a checkpoint.
    cid = cenv.create(pod, "plain", command=SLEEPER)
    assert [c.id for c in cenv.list()] == [cid]


def with_member(members, name, data):
    return [m for m in members if m[0] != name] + [(name, data)]


def write_tar_with_link(path, members, name, target):
    write_tar(path, members)
    with tarfile.open(path, "a") as tar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)


@pytest.mark.parametrize("case,why", [
    ("config-not-json", "config.dump is not a JSON object"),
    ("config-link", "config.dump is not a regular file"),
    ("config-too-large", "config.dump is larger than 4194304 bytes"),
    ("no-checkpoint", "lacks the checkpoint/ directory"),
    ("no-image", "config.dump names no image"),
    ("image-not-pulled", "pull it first"),
])
def test_restore_refuses_hostile_checkpoint_images(cenv, tmp_path, case, why):
    """A checkpoint image's files are as hostile as an archive's members: refused with the
    problem named, before anything is made (links are not followed: /etc/passwd would be a
    JSON object of nothing)."""
    members = good(cenv.busybox)
    path = str(tmp_path / "ckpt.tar")
    if case == "config-link":
        write_tar_with_link(path, [m for m in members if m[0] != "config.dump"], "config.dump",
                            "/etc/passwd")
    else:
        if case == "config-not-json":
            members = with_member(members, "config.dump", b"{not json")
        elif case == "config-too-large":
            members = with_member(members, "config.dump",
                                  b'{"x": "' + b"a" * (4 << 20) + b'"}')
        elif case == "no-checkpoint":
            members = [m for m in members if not m[0].startswith("checkpoint")]
        elif case == "no-image":
            members = with_member(members, "config.dump", json.dumps({"id": "a" * 64}).encode())
        elif case == "image-not-pulled":
            members = good("example.invalid/never-pulled:1")
        write_tar(path, members)
    with open(path, "rb") as f:
        ref = push_checkpoint_image(cenv.registry, f.read(), name="ctest/hostile-" + case)
    pull(cenv.d, ref)
    pod = cenv.run_pod()
    err = rpc_error(cenv.create, pod, "restored", image=ref)
    want = "NOT_FOUND" if case == "image-not-pulled" else "INVALID_ARGUMENT"
    assert err.code() == getattr(grpc.StatusCode, want), err.details()
    assert why in err.details()
    assert "a checkpoint of container 'counter'" in err.details()
    assert not cenv.list()


# The monitor's restore verb, driven directly (conmon_harness) with real runc.  CRIU cannot run
# here, and crisp refuses a restore before any monitor where `criu check` fails, so the daemon
# path cannot reach it; this stand-in runtime turns the monitor's `restore --detach
# --image-path I --work-path W` into `run --detach` of the same bundle.  What is tested is the
# monitor's side: the command line it builds, and that a restored container's pid file, stdio,
# CRI log and exit status flow as a created one's do.  CRIU's memory image is what it replaces.
STAND_IN = """#!/usr/bin/python3
import os, sys
args = sys.argv[1:]
with open(%(calls)r, "a") as f:
    f.write(" ".join(args) + "\\n")
if "restore" in args:
    if %(fail)r:
        sys.exit(1)
    i = args.index("restore")
    rest, kept = args[i + 1:], []
    while rest:
        a = rest.pop(0)
        if a in ("--image-path", "--work-path"):
            rest.pop(0)
        else:
            kept.append(a)
    args = args[:i] + ["run"] + kept
os.execv(%(runc)r, [%(runc)r] + args)
"""


def stand_in_monitor(tmp_path, args, fail=False):
    class RestoringMonitor(H.Monitor):
        def argv(self, sync_fd):
            argv = super().argv(sync_fd)
            argv[argv.index("--runtime") + 1] = self.runtime
            return argv

    tmp = str(tmp_path / "m")
    os.makedirs(tmp)
    calls = os.path.join(tmp, "calls")
    runtime = os.path.join(tmp, "runtime")
    with open(runtime, "w") as f:
        f.write(STAND_IN % {"calls": calls, "fail": fail, "runc": H.RUNC})
    os.chmod(runtime, 0o755)
    images, work = os.path.join(tmp, "images"), os.path.join(tmp, "work")
    os.makedirs(images)
    os.makedirs(work)
    bundle = H.make_bundle(os.path.join(tmp, "bundle"), args)
    m = RestoringMonitor(tmp, "restore-test-%s" % uuid.uuid4().hex[:12], bundle,
                         os.path.join(tmp, "runc"),
                         extra=["--restore", images, "--restore-work", work])
    m.runtime = runtime
    return m, calls, images, work


@pytest.fixture
def monitors(tmp_path):
    made = []

    def make(*a, **kw):
        made.append(stand_in_monitor(tmp_path, *a, **kw))
        return made[-1]

    yield make
    for m, *_ in made:
        m.cleanup()
    scope = Scope(str(tmp_path), runc_roots=[m.root for m, *_ in made])
    leaks = scope.leaks(monitor_grace=2)
    scope.clean()
    assert not leaks, "leaked: %s" % leaks


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")
def test_monitor_restore_verb_with_a_stand_in_runtime(monitors):
    m, calls, images, work = monitors(["sh", "-c", "echo restored; sleep 0.3; exit 3"])
    assert m.spawn(), m.error
    assert m.container_pid > 0
    with open(calls) as f:
        first = f.readline().split()
    verb = first.index("restore")
    assert first[verb:verb + 6] == ["restore", "--detach", "--image-path", images,
                                    "--work-path", work]
    assert "--pid-file" in first and first[-1] == m.cid
    # No `start`: the restore left it running.
    m.wait_exit()
    assert m.exit_file()["status"] == "3"
    assert b"stdout F restored\n" in m.read_log()
    with open(calls) as f:
        verbs = [line.split() for line in f]
    assert not any("start" in v for v in verbs)
    assert any("delete" in v for v in verbs)  # the monitor's own delete after the exit


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")
def test_monitor_restore_failure_is_reported(monitors):
    m, calls, _, _ = monitors(["true"], fail=True)
    assert not m.spawn()
    assert "restore exited with status 1" in m.error, m.error
    m.wait_exit()
