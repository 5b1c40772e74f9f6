"""The engine queue in-process: first come first served, one at a time, a bounded line, cancel."""

from __future__ import annotations

import threading
import time

import pytest

from ohlora.serve.queue import EngineQueue, Job, QueueClosed, QueueFull


def test_jobs_run_one_at_a_time_in_arrival_order():
    q = EngineQueue(max_waiting=10)
    order, running, overlap = [], [], []
    gate = threading.Event()

    def work(name):
        def fn(job):
            running.append(name)
            if len(running) > 1:
                overlap.append(name)
            if name == 0:
                gate.wait(5)
            time.sleep(0.01)
            order.append(name)
            running.remove(name)
        return fn

    jobs = [Job(work(i)) for i in range(5)]
    for j in jobs:
        q.submit(j)
    gate.set()
    deadline = time.monotonic() + 10
    while len(order) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    q.close()
    assert order == [0, 1, 2, 3, 4] and not overlap
    assert all(j.started_at >= j.enqueued_at for j in jobs)


def test_a_full_line_is_refused_with_an_estimate_and_a_cancelled_job_leaves_it():
    q = EngineQueue(max_waiting=2, first_estimate_s=3.0)
    gate = threading.Event()
    ran = []
    first = Job(lambda job: gate.wait(5))
    q.submit(first)
    while q.running is None:
        time.sleep(0.005)
    a, b = Job(lambda job: ran.append("a")), Job(lambda job: ran.append("b"))
    q.submit(a)
    q.submit(b)
    with pytest.raises(QueueFull) as info:
        q.submit(Job(lambda job: ran.append("c")))
    assert info.value.retry_after == 9  # 3 s a job, times the two waiting and the one asking
    q.cancel(a)
    assert q.waiting == 1
    q.submit(Job(lambda job: ran.append("d")))  # room again
    gate.set()
    deadline = time.monotonic() + 5
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    q.close()
    assert ran == ["b", "d"]
    with pytest.raises(QueueClosed):
        q.submit(Job(lambda job: None))


def test_a_job_that_raises_does_not_stop_the_worker():
    q = EngineQueue()
    events = []
    bad = Job(lambda job: 1 / 0)
    good = Job(lambda job: events.append("ran"))
    q.submit(bad)
    q.submit(good)
    deadline = time.monotonic() + 5
    while not events and time.monotonic() < deadline:
        time.sleep(0.01)
    q.close()
    assert events == ["ran"]
    assert bad.events.get_nowait() == ("error", None)  # the waiting request hears of it
