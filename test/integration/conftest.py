"""Fixtures shared by crisp's integration tests: a fresh daemon per test, a factory for
more, and a session-wide local OCI registry serving the test images."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from crisp_daemon import CrispDaemon  # noqa: E402


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("crisp's integration tests need root", returncode=1)


@pytest.fixture
def crisp_factory(tmp_path_factory):
    """crisp_factory(config="extra crisp.conf text", start=True) -> CrispDaemon"""
    made = []

    def make(config="", start=True):
        d = CrispDaemon(str(tmp_path_factory.mktemp("crisp")), config)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    leaks = []
    for d in made:
        leaks += d.cleanup()
    assert not leaks, "mounts left behind: %s" % leaks


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
