"""The Stream* twins of the List* RPCs: the same items and filters, sent in bounded chunks."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from container_harness import *  # noqa: E402,F401,F403
from cri_client import pb  # noqa: E402

CHUNK_BYTES = 512 * 1024
BIG = "x" * 12000  # an annotation that makes 100 containers span several chunks


def streamed(cenv, name, request, field):
    """-> (all items, the serialized size of each message) of a Stream* call."""
    items, sizes = [], []
    for msg in cenv.c.stream(name, request, timeout=60):
        items.extend(getattr(msg, field))
        sizes.append(msg.ByteSize())
    return items, sizes


def ids(items):
    return sorted(i.id for i in items)


@pytest.fixture
def node(cenv):
    """Two pods; 100 containers in the first (half of them started), one in the second."""
    p1, p2 = cenv.run_pod("big"), cenv.run_pod("small")
    made = []
    for i in range(100):
        cid = cenv.create(p1, "c%d" % i, command=["sleep", "1000"],
                          labels={"half": str(i % 2)}, annotations={"big": BIG})
        made.append(cid)
        if i % 2 == 0:
            cenv.start(cid)
    made.append(cenv.run(p2, "only", command=["sleep", "1000"]))
    return cenv, p1, p2, made


def test_containers_stream_agrees_with_list(node):
    cenv, p1, p2, made = node
    listed = cenv.c.call("ListContainers", pb.ListContainersRequest()).containers
    items, sizes = streamed(cenv, "StreamContainers", pb.StreamContainersRequest(), "containers")
    assert ids(items) == ids(listed) == sorted(made)
    assert {i.id: i for i in items} == {i.id: i for i in listed}
    # 100 containers of >12 KB each do not fit one chunk, and no chunk is far over the bound
    assert len(sizes) >= 3 and max(sizes) <= CHUNK_BYTES + 20000, sizes
    for f in (pb.ContainerFilter(pod_sandbox_id=p2),
              pb.ContainerFilter(label_selector={"half": "1"}),
              pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)),
              pb.ContainerFilter(id=made[7][:20])):
        want = cenv.c.call("ListContainers", pb.ListContainersRequest(filter=f)).containers
        got, _ = streamed(cenv, "StreamContainers", pb.StreamContainersRequest(filter=f),
                          "containers")
        assert ids(got) == ids(want) and len(want) > 0, f


def test_pods_stats_and_images_streams_agree_with_lists(node):
    cenv, p1, p2, made = node
    pairs = [
        ("ListPodSandbox", pb.ListPodSandboxRequest(), "items",
         "StreamPodSandboxes", pb.StreamPodSandboxesRequest(), "pod_sandboxes"),
        ("ListPodSandbox", pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(id=p2)), "items",
         "StreamPodSandboxes",
         pb.StreamPodSandboxesRequest(filter=pb.PodSandboxFilter(id=p2)), "pod_sandboxes"),
        ("ListImages", pb.ListImagesRequest(), "images",
         "StreamImages", pb.StreamImagesRequest(), "images"),
    ]
    for lname, lreq, lfield, sname, sreq, sfield in pairs:
        want = getattr(cenv.c.call(lname, lreq), lfield)
        got, _ = streamed(cenv, sname, sreq, sfield)
        assert ids(got) == ids(want) and want, sname
    # stats carry live counters: compare the ids they cover
    want = cenv.c.call("ListContainerStats", pb.ListContainerStatsRequest()).stats
    got, _ = streamed(cenv, "StreamContainerStats", pb.StreamContainerStatsRequest(),
                      "container_stats")
    assert sorted(s.attributes.id for s in got) == sorted(s.attributes.id for s in want)
    assert len(want) > 50  # the running ones at least
    f = pb.PodSandboxStatsFilter(id=p2)
    want = cenv.c.call("ListPodSandboxStats", pb.ListPodSandboxStatsRequest(filter=f)).stats
    got, _ = streamed(cenv, "StreamPodSandboxStats",
                      pb.StreamPodSandboxStatsRequest(filter=f), "pod_sandbox_stats")
    assert [s.attributes.id for s in got] == [s.attributes.id for s in want] == [p2]


def test_empty_stream_ends_cleanly(cenv):
    items, sizes = streamed(cenv, "StreamContainers", pb.StreamContainersRequest(), "containers")
    assert items == [] and sizes == []
    f = pb.ContainerFilter(id="nope")
    assert streamed(cenv, "StreamContainers", pb.StreamContainersRequest(filter=f),
                    "containers") == ([], [])


def test_a_client_that_leaves_mid_stream_harms_nothing(node):
    cenv, p1, p2, made = node
    for _ in range(20):
        it = cenv.c.stream("StreamContainers", pb.StreamContainersRequest())
        next(it)
        it.cancel()
    assert len(cenv.c.call("ListContainers", pb.ListContainersRequest()).containers) == 101
