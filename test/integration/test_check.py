"""`crisp check`: the node checked without a daemon, from the test suite's own configuration
(temp roots, the build's monitor, a CNI directory of the test's) and from broken ones built
in the test's temporary directory. Nothing on the host is touched beyond reading."""
import json
import os
import subprocess

import pytest

from crisp_daemon import CRISP

EVERY_CHECK = {"config", "privileges", "runtime.runc", "runtime.crun", "monitor", "cni.config",
               "cni.plugins", "storage.root", "storage.run-root", "storage.overlay", "socket",
               "kernel.pidfd", "kernel.cgroups", "kernel.overlay-metacopy",
               "kernel.idmapped-mounts"}


def write_conflist(d, name="10-t.conflist", types=("loopback",), text=None):
    if text is None:
        text = json.dumps({"cniVersion": "1.0.0", "name": "t",
                           "plugins": [{"type": t} for t in types]})
    with open(os.path.join(d.cni_dir, name), "w") as f:
        f.write(text)


def drop_in(d, text):
    with open(os.path.join(d.conf_dir, "50-test.conf"), "w") as f:
        f.write(text)


def run_check(d, *extra, prefix=()):
    p = subprocess.run([*prefix, *d.command("check", *extra)], capture_output=True, text=True,
                       timeout=60)
    assert not p.stderr, p.stderr
    return p


def problems(out):
    """The problem lines of a text report, each joined with the fix line under it."""
    lines = out.splitlines()
    return [line + "\n" + lines[i + 1] for i, line in enumerate(lines)
            if line.startswith("problem ")]


def only_problem(d, name, *expected, prefix=()):
    """Runs the check, which must exit 1 with one problem, the check NAME's; returns it (with
    its fix line) after checking it holds every EXPECTED string."""
    p = run_check(d, prefix=prefix)
    assert p.returncode == 1, p.stdout
    [prob] = problems(p.stdout)
    assert prob.startswith("problem  %s " % name), prob
    for e in expected:
        assert e in prob, prob
    return prob


@pytest.fixture
def node(crisp_factory):
    """A daemon's configuration, never started, with a valid CNI list of installed plugins."""
    def make(config=""):
        d = crisp_factory(config, start=False)
        write_conflist(d)
        return d
    return make


def test_check_healthy_node_exits_0(node):
    d = node()
    p = run_check(d)
    assert p.returncode == 0, p.stdout
    assert not problems(p.stdout)
    assert p.stdout.splitlines()[-1].startswith("0 problems, ")
    assert "runc version" in p.stdout
    # The overlay was really tried, next to the storage root, and nothing stayed there.
    assert "an overlay with metacopy and a data-only layer works in '%s'" % d.tmp in p.stdout
    assert not [n for n in os.listdir(d.tmp) if n.startswith(".crisp-overlay-probe")]
    assert not os.path.exists(d.root) and not os.path.exists(d.run_root)


def test_check_warnings_alone_exit_0(node):
    d = node("[crisp]\nno-such-key = 1\n")
    p = run_check(d)
    assert p.returncode == 0, p.stdout
    assert any(line.startswith("warning  config") and "no-such-key" in line
               for line in p.stdout.splitlines()), p.stdout


def test_check_json_lists_every_check(node):
    d = node()
    p = run_check(d, "--json")
    assert p.returncode == 0, p.stdout
    report = json.loads(p.stdout)
    assert {c["name"] for c in report["checks"]} == EVERY_CHECK
    assert report["problems"] == 0
    assert report["warnings"] == sum(c["status"] == "warning" for c in report["checks"])
    for c in report["checks"]:
        assert c["status"] in ("ok", "warning", "problem")
        assert c["message"]
        assert (c["fix"] is None) == (c["status"] == "ok")


def test_check_json_reports_problems(node):
    d = node("[runtime.runc]\npath = /nonexistent/runc\n")
    p = run_check(d, "--json")
    assert p.returncode == 1
    report = json.loads(p.stdout)
    bad = [c for c in report["checks"] if c["status"] == "problem"]
    assert [c["name"] for c in bad] == ["runtime.runc"]
    assert report["problems"] == 1
    assert "/nonexistent/runc" in bad[0]["message"] and "[runtime.runc]" in bad[0]["fix"]


def test_check_missing_runtime_binary(node):
    d = node("[runtime.runc]\npath = /nonexistent/runc\n")
    only_problem(d, "runtime.runc", "'/nonexistent/runc' is not there",
                 "fix: install /nonexistent/runc, or set path in [runtime.runc]")


def test_check_runtime_that_does_not_answer_version(node, tmp_path):
    fake = tmp_path / "fake-runtime"
    fake.write_text("#!/bin/sh\necho 'no such option' >&2\nexit 3\n")
    fake.chmod(0o755)
    d = node("[runtime.fake]\npath = %s\n" % fake)
    only_problem(d, "runtime.fake", "--version' failed", "no such option", "fix: install")


def test_check_malformed_conflist(node):
    d = node()
    os.unlink(os.path.join(d.cni_dir, "10-t.conflist"))
    write_conflist(d, "10-broken.conflist", text='{"cniVersion": "1.0.0", "name": ')
    only_problem(d, "cni.config", "10-broken.conflist' is not a valid network",
                 "fix: correct the file or remove it")


def test_check_malformed_conflist_beside_a_valid_one_is_a_warning(node):
    d = node()
    write_conflist(d, "00-broken.conflist", text="{")
    p = run_check(d)
    assert p.returncode == 0, p.stdout
    assert "00-broken.conflist' is not a valid network configuration, ignoring" in p.stdout


def test_check_conflist_naming_a_missing_plugin(node):
    d = node()
    write_conflist(d, "05-missing.conflist", types=("loopback", "no-such-plugin"))
    only_problem(d, "cni.plugins", "'no-such-plugin'", "05-missing.conflist",
                 "fix: install the CNI plugin 'no-such-plugin'")


def test_check_storage_root_under_a_file(node):
    d = node()
    blocker = os.path.join(d.tmp, "a-file")
    open(blocker, "w").close()
    drop_in(d, "[crisp]\nroot = %s/crisp\n" % blocker)
    only_problem(d, "storage.root", "'%s' is not a directory" % blocker, "fix: make")


def test_check_storage_root_read_only(node):
    """A read-only bind mount of the test's own directory, in a mount namespace of the check's
    own: the host's mount table never sees it."""
    d = node()
    ro = os.path.join(d.tmp, "ro")
    os.mkdir(ro)
    drop_in(d, "[crisp]\nroot = %s/crisp\n" % ro)
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', ro]
    only_problem(d, "storage.root", "'%s' is not writable (Read-only file system)" % ro,
                 "fix: make", prefix=prefix)


def test_check_invalid_config_file(node):
    d = node("[crisp]\nlog-level = loud\n")
    p = run_check(d, "--json")
    assert p.returncode == 1
    report = json.loads(p.stdout)
    [prob] = [c for c in report["checks"] if c["status"] == "problem"]
    assert prob["name"] == "config"
    assert d.conf_file in prob["message"] and "log-level" in prob["message"]
    assert "loud" in prob["message"] and prob["fix"]
    # What needs no configuration is still checked.
    assert "kernel.pidfd" in {c["name"] for c in report["checks"]}


def test_check_not_root():
    """As nobody, from the built-in defaults (the host's paths, only read)."""
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CRISP,
                        "--config", "/nonexistent/crisp.conf",
                        "--config-dir", "/nonexistent/crisp.conf.d", "check"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "ok       config                   no configuration file" in p.stdout
    assert any(x.startswith("problem  privileges") and "fix: run crisp" in x
               for x in problems(p.stdout)), p.stdout
    assert "not mounted: not root" in p.stdout
