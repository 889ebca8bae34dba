"""GetContainerEvents: the events of every container and pod sandbox, as they happen, to many
subscribers at once; slow ones are dropped, a restart ends the streams cleanly, and exits that
happened while crisp was down are announced when it is back."""
import os
import signal
import sys
import threading
import time

import grpc
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from container_harness import *  # noqa: E402,F401,F403
from cri_client import CRIClient, pb  # noqa: E402

CREATED, STARTED, STOPPED, DELETED = (pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT,
                                      pb.CONTAINER_STOPPED_EVENT, pb.CONTAINER_DELETED_EVENT)
NAMES = {CREATED: "CREATED", STARTED: "STARTED", STOPPED: "STOPPED", DELETED: "DELETED"}


class Subscriber:
    """A GetContainerEvents stream on a channel of its own, read by a thread."""

    def __init__(self, sock, read=True, **options):
        self.client = CRIClient(sock)
        self.events = []
        self.error = None
        self.stream = self.client.stream("GetContainerEvents", pb.GetEventsRequest(),
                                         timeout=600, **options)
        self.cond = threading.Condition()
        self.thread = None
        if read:
            self.start_reading()

    def start_reading(self):
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for ev in self.stream:
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        except grpc.RpcError as e:
            self.error = e
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout=20, what="events"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.events):
                left = deadline - time.monotonic()
                assert left > 0 and self.error is None, "waiting for %s; got %s (%s)" % (
                    what, self.summary(), self.error)
                self.cond.wait(left)

    def wait_end(self, timeout=20):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the stream did not end"

    def summary(self, ids=None):
        return [(NAMES[e.container_event_type], e.container_id[:12]) for e in self.events
                if ids is None or e.container_id in ids]

    def of(self, ids):
        return [(e.container_event_type, e.container_id) for e in self.events
                if e.container_id in ids]

    def close(self):
        self.stream.cancel()
        if self.thread:
            self.thread.join(10)
        self.client.close()


@pytest.fixture
def subs(cenv):
    made = []

    def make(**kw):
        s = Subscriber(cenv.d.sock, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def test_a_pod_lifecycle_in_order(cenv, subs):
    s = subs()
    time.sleep(0.2)  # subscribed before the first change
    pod = cenv.run_pod("ev")
    cid = cenv.run(pod, "c", command=["sh", "-c", "sleep 1; exit 3"])
    # the exit is announced without any call from us: the monitor's exit file is watched
    s.wait_for(lambda evs: (STOPPED, cid) in [(e.container_event_type, e.container_id)
                                              for e in evs], what="the exit")
    stopped = [e for e in s.events if e.container_id == cid][-1]
    assert stopped.pod_sandbox_status.id == pod
    assert stopped.pod_sandbox_status.state == pb.SANDBOX_READY
    [st] = stopped.containers_statuses
    assert (st.id, st.state, st.exit_code) == (cid, pb.CONTAINER_EXITED, 3)
    assert stopped.created_at >= st.finished_at > 0
    cenv.remove(cid)
    cenv.c.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=pod))
    cenv.c.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
    want = [(CREATED, pod), (STARTED, pod), (CREATED, cid), (STARTED, cid), (STOPPED, cid),
            (DELETED, cid), (STOPPED, pod), (DELETED, pod)]
    s.wait_for(lambda evs: len(evs) >= len(want), what="the whole lifecycle")
    time.sleep(0.3)
    assert s.of({pod, cid}) == want, s.summary()
    by = {(e.container_event_type, e.container_id): e for e in s.events}
    assert [c.state for c in by[(CREATED, cid)].containers_statuses] == [pb.CONTAINER_CREATED]
    assert [c.state for c in by[(STARTED, cid)].containers_statuses] == [pb.CONTAINER_RUNNING]
    assert len(by[(DELETED, cid)].containers_statuses) == 0
    assert by[(STOPPED, pod)].pod_sandbox_status.state == pb.SANDBOX_NOTREADY
    assert not by[(DELETED, pod)].HasField("pod_sandbox_status")
    times = [e.created_at for e in s.events]
    assert times == sorted(times)


def test_a_stop_is_announced_once(cenv, subs):
    s = subs()
    pod = cenv.run_pod("ev1")
    cid = cenv.run(pod, "c", command=["sleep", "1000"])
    cenv.stop(cid, timeout=0)
    cenv.status(cid)
    cenv.remove(cid)
    s.wait_for(lambda evs: (DELETED, cid) in [(e.container_event_type, e.container_id)
                                              for e in evs])
    assert [t for t, i in s.of({cid})] == [CREATED, STARTED, STOPPED, DELETED]


def test_many_subscribers_get_the_same_events(cenv, subs):
    many = [subs() for _ in range(60)]
    time.sleep(0.5)
    pod = cenv.run_pod("ev2")
    cids = [cenv.run(pod, "c%d" % i, command=["true"]) for i in range(3)]
    want = {pod} | set(cids)
    n = 2 + 3 * 3  # the pod's CREATED, STARTED; each container's CREATED, STARTED, STOPPED
    for s in many:
        s.wait_for(lambda evs: len([e for e in evs if e.container_id in want]) >= n)
    first = many[0].of(want)
    assert len(first) == n, "\n".join(map(str, many[0].summary(want)))
    for s in many[1:]:
        assert s.of(want) == first


def test_a_slow_subscriber_is_dropped_and_holds_up_nobody(cenv, subs):
    # The stalled one reads nothing: its stream backs up.
    stalled = Subscriber(cenv.d.sock, read=False)
    try:
        fast = subs()
        pod = cenv.run_pod("ev3")
        # fat events: every one carries the statuses of the pod's 20 containers
        base = [cenv.create(pod, "base%d" % i, command=["true"],
                            annotations={"a": "y" * 4000}) for i in range(20)]
        xs = []
        deadline = time.monotonic() + 120
        while "dropping 1 subscriber" not in open(cenv.d.log_path).read():
            assert time.monotonic() < deadline, "the stalled subscriber was never dropped"
            xs.append(cenv.create(pod, "x%d" % len(xs), command=["true"]))
            cenv.remove(xs[-1])
        # crisp kept serving, and the reading subscriber got every event, in order
        fast.wait_for(lambda evs: evs and evs[-1].container_id == xs[-1]
                      and evs[-1].container_event_type == DELETED, timeout=60)
        assert fast.error is None
        want = [(CREATED, pod), (STARTED, pod)] + [(CREATED, c) for c in base]
        for x in xs:  # a created container is killed by its removal: it stops, then goes
            want += [(CREATED, x), (STOPPED, x), (DELETED, x)]
        assert fast.of(set(base) | set(xs) | {pod}) == want
        # the stalled one, once it reads, finds the events it had and then the reason
        stalled.start_reading()
        stalled.wait_end(60)
        assert stalled.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "fell too far behind" in stalled.error.details()
        assert 0 < len(stalled.events) < len(want)
        assert stalled.of(set(base) | set(xs) | {pod}) == want[:len(stalled.events)]
        for cid in base:
            cenv.remove(cid)
    finally:
        stalled.close()


def test_a_restart_ends_streams_cleanly(cenv, subs):
    s = subs()
    pod = cenv.run_pod("ev4")
    s.wait_for(lambda evs: len(evs) >= 2)
    cenv.d.restart()
    s.wait_end()
    assert s.error.code() == grpc.StatusCode.UNAVAILABLE
    assert "crisp is stopping" in s.error.details()
    s2 = subs()
    cid = cenv.run(pod, "after", command=["sleep", "1000"])
    s2.wait_for(lambda evs: [(e.container_event_type, e.container_id) for e in evs][-2:]
                == [(CREATED, cid), (STARTED, cid)])


def test_an_exit_while_crisp_was_down_is_announced_at_start(cenv, subs):
    pod = cenv.run_pod("ev5")
    cid = cenv.run(pod, "c", command=["sh", "-c", "sleep 2; exit 7"])
    running = cenv.run(pod, "r", command=["sleep", "1000"])
    cenv.d.kill9()
    time.sleep(3)
    cenv.d.start()
    s = subs()
    s.wait_for(lambda evs: (STOPPED, cid) in [(e.container_event_type, e.container_id)
                                              for e in evs], what="the exit made while down")
    ev = [e for e in s.events if e.container_id == cid][0]
    assert ev.container_event_type == STOPPED
    st = {c.id: c for c in ev.containers_statuses}
    assert st[cid].exit_code == 7 and st[running].state == pb.CONTAINER_RUNNING
    assert (STOPPED, running) not in s.of({running})
    # and a container still running is watched again: its exit is announced too
    os.kill(cenv.pid(running), 9)
    s.wait_for(lambda evs: (STOPPED, running) in [(e.container_event_type, e.container_id)
                                                  for e in evs], what="the later exit")


def test_pod_sandbox_status_carries_its_containers(cenv):
    pod = cenv.run_pod("ev6")
    a = cenv.run(pod, "a", command=["sleep", "1000"])
    b = cenv.run(pod, "b", command=["sh", "-c", "exit 5"])
    cenv.wait_exit(b)
    resp = cenv.c.call("PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=pod))
    st = {c.id: c for c in resp.containers_statuses}
    assert set(st) == {a, b}
    assert st[a].state == pb.CONTAINER_RUNNING
    assert (st[b].state, st[b].exit_code) == (pb.CONTAINER_EXITED, 5)
    assert st[a] == cenv.status(a).status





def test_status_right_after_the_exit_file_appears_reports_the_exit(cenv):
    """ContainerStatus answers from memory that the exit watch keeps true, without reading the
    exit file.  Twenty containers are killed while crisp is stopped (SIGSTOP): when it goes on,
    their events wait in the inotify queue, and statuses asked at once must report every exit
    (a status falls back to reading the file while events wait or are being handled).  Calls
    are dispatched through the main loop that handles the events, so the window this guards is
    narrow; the test cannot force a status into it, only check that none is wrong."""
    pod = cenv.run_pod()
    cids = [cenv.run(pod, "x%d" % i, command=SLEEPER) for i in range(20)]
    pids = [cenv.pid(cid) for cid in cids]
    exit_files = [os.path.join(cenv.d.run_root, "containers", cid, "monitor", "exit")
                  for cid in cids]
    os.kill(cenv.d.proc.pid, signal.SIGSTOP)
    try:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: all(os.path.exists(f) for f in exit_files), 20, what="the exit files")
    finally:
        os.kill(cenv.d.proc.pid, signal.SIGCONT)
    for cid in reversed(cids):
        st = cenv.status(cid).status
        assert (st.state, st.exit_code) == (pb.CONTAINER_EXITED, 137), cid
