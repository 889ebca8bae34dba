"""Fixtures shared by crisp's integration tests: a fresh daemon per test, a factory for
more, and a session-wide local OCI registry serving the test images.

Every test fails at teardown if it left something behind (leakcheck), if a daemon it started
ended in a way nobody asked for, if any process it started wrote a sanitizer report, or if a
monitor crashed (crashcheck)."""
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import crashcheck  # noqa: E402
from crisp_daemon import CrispDaemon  # noqa: E402
from leakcheck import LeakCheck  # noqa: E402


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("crisp's integration tests need root", returncode=1)


def pytest_report_header(config):
    if not crashcheck.MonitorExits().watched():
        return "monitor crashes: not seen (run the suite through reaper.py: make integration)"


def failures(what, found):
    return "%s:\n  %s" % (what, "\n  ".join(found)) if found else ""


@pytest.fixture(autouse=True)
def crash_check(tmp_path_factory):
    """Sanitizer reports of every process the test starts go to a directory of its own (the
    daemon fixture gives each daemon its own); any report, or a monitor that crashed, fails
    the test."""
    san_dir = str(tmp_path_factory.mktemp("san"))
    saved = {v: os.environ.get(v) for v in crashcheck.SANITIZER_VARS}
    env = crashcheck.sanitizer_env(os.environ, san_dir)
    os.environ.update({v: env[v] for v in saved})
    exits = crashcheck.MonitorExits()
    yield exits
    for v, value in saved.items():
        if value is None:
            os.environ.pop(v, None)
        else:
            os.environ[v] = value
    problems = crashcheck.sanitizer_reports(san_dir) + exits.read()
    shutil.rmtree(san_dir, ignore_errors=True)
    if problems:
        pytest.fail(failures("crashed", problems), pytrace=False)


@pytest.fixture
def crisp_factory(tmp_path_factory):
    """crisp_factory(config="extra crisp.conf text", start=True, cls=CrispDaemon, **kw) ->
    a cls(tmpdir, config=config, **kw)"""
    made = []
    check = LeakCheck()

    def make(config="", start=True, cls=CrispDaemon, **kw):
        d = cls(str(tmp_path_factory.mktemp("crisp")), config=config, **kw)
        made.append(d)
        check.add(d.leak_scope())
        if start:
            d.start()
        return d

    yield make
    for d in made:
        d.finish()
    leaks = check.check()
    problems = [p for d in made for p in d.problems()]
    for d in made:
        shutil.rmtree(d.tmp, ignore_errors=True)
    if leaks or problems:
        pytest.fail("\n".join(filter(None, (failures("leaked", leaks),
                                            failures("crisp ended badly", problems)))),
                    pytrace=False)


@pytest.fixture
def crisp(crisp_factory):
    return crisp_factory()


@pytest.fixture(scope="session")
def test_images(tmp_path_factory):
    """The stock test images, built once per session: {name: build result with "dir"}."""
    from registry_harness import build_images
    return build_images(str(tmp_path_factory.mktemp("images")))


@pytest.fixture(scope="session")
def registry(test_images):
    """A local registry with <host>/busybox:latest and <host>/multilayer:latest pushed."""
    from registry_harness import Registry
    with Registry() as reg:
        for name in ("busybox", "multilayer"):
            reg.push(test_images[name]["dir"], "latest", name, "latest")
        yield reg
