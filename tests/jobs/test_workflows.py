"""Workflows end to end: chains, groups, chords and child workflows run by real workers (in this
process, or ``ferrymq worker`` processes) on a real broker, their state read from the store at
each point, and a half-done workflow finishing after its worker was SIGKILLed and its broker
killed and restarted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.jobs import App, SerializationError
from ferrymq.jobs.db import Database
from ferrymq.jobs.idempotency import IdempotencyMiddleware
from ferrymq.jobs.testing import worker_thread
from ferrymq.jobs.workflows import (
    SUCCEEDED,
    WorkflowMiddleware,
    Workflows,
    chain,
    chord,
    failed,
    finish_step,
    group,
    plan,
    sig,
)
from tests.support.flows_app import build
from tests.support.jobs import WorkerProcess, wait_until
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

pytestmark = pytest.mark.timeout(120)
FLOWS_APP = "tests.support.flows_app:app"


class Flows:
    """An app on its own queue and store, with what a test asks about it."""

    def __init__(self, url: str, tmp: Path, store: str | None = None) -> None:
        self.url, self.queue = url, f"flows-{uuid.uuid4().hex[:8]}"
        self.store = store or f"sqlite:///{tmp / 'jobs.db'}"
        self.app = build(url, self.store, self.queue)
        assert self.app.db is not None
        self.workflows = Workflows(self.app.db)
        self.reader = Database(self.store)

    def job(self, name: str) -> Any:
        return self.app.jobs[name]

    def state(self, wf: str) -> dict[str, Any]:
        return self.workflows.state(wf)

    def steps(self, wf: str) -> list[str]:
        return [s["state"] for s in self.state(wf)["steps"]]

    def wait_done(self, wf: str, timeout: float = 30.0) -> dict[str, Any]:
        wait_until(lambda: self.state(wf)["state"] != "running", timeout, f"workflow {wf} to end")
        return self.state(wf)

    def runs(self, job: str) -> list[tuple[str, int]]:
        """(argument, pid) of every committed run of ``job``, in commit order."""
        with self.reader.transaction() as tx:
            rows = tx.execute("SELECT arg, pid, seq FROM flow_runs WHERE job = ?", (job,)).fetchall()
        return [(arg, pid) for arg, pid, _ in sorted(rows, key=lambda r: r[2])]

    def worker_process(self, tmp: Path, *args: str) -> WorkerProcess:
        return WorkerProcess(self.url, tmp / "effects.db", *args, app=FLOWS_APP,
                             env={"FERRYMQ_FLOWS_STORE": self.store, "FERRYMQ_FLOWS_QUEUE": self.queue})


@pytest.fixture
def flows(amqp_url: str, tmp_path: Path) -> Iterator[Flows]:
    f = Flows(amqp_url, tmp_path)
    yield f
    f.app.close()


def consumers(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.consumer_count
    except pika.exceptions.ChannelClosedByBroker:  # not declared yet
        return 0
    finally:
        conn.close()


# --- shapes ----------------------------------------------------------------------------------------


def test_chain_of_three_passes_each_result_on_as_the_next_steps_last_argument(flows):
    add, mul = flows.job("add"), flows.job("mul")
    wf = chain(sig(add, 1, 2), sig(add, 10), sig(mul, 2)).send(flows.app)
    before = flows.state(wf)
    assert (before["state"], flows.steps(wf)) == ("running", ["pending"] * 3)
    with worker_thread(flows.app, concurrency=4):
        done = flows.wait_done(wf)
    assert (done["state"], done["result"]) == ("succeeded", 26)
    assert [s["result"] for s in done["steps"]] == [3, 13, 26]
    assert [a for a, _ in flows.runs("add")] == ["[1, 2]", "[10, 3]"]
    assert [a for a, _ in flows.runs("mul")] == ["[2, 13]"]


def test_a_step_whose_job_is_running_shows_running_and_its_successor_pending(flows, tmp_path):
    gate = tmp_path / "open"
    wf = chain(sig(flows.job("gate"), str(gate), 5), sig(flows.job("add"), 1)).send(flows.app)
    with worker_thread(flows.app, concurrency=2):
        wait_until(lambda: flows.steps(wf)[0] == "running", 30, "the gate step to start")
        assert (flows.state(wf)["state"], flows.steps(wf)) == ("running", ["running", "pending"])
        gate.touch()
        done = flows.wait_done(wf)
    assert (done["state"], done["result"], flows.steps(wf)) == ("succeeded", 6, ["succeeded"] * 2)
    assert done["steps"][0]["attempts"] == 1


def test_group_of_20_runs_every_member_once_and_keeps_results_in_member_order(flows):
    wf = group([sig(flows.job("square"), i) for i in range(20)]).send(flows.app)
    with worker_thread(flows.app, concurrency=8):
        done = flows.wait_done(wf)
    assert done["state"] == "succeeded"
    assert done["result"] == [i * i for i in range(20)]
    assert sorted(int(a) for a, _ in flows.runs("square")) == list(range(20))


def test_chord_over_50_members_on_two_worker_processes_fires_its_callback_exactly_once(
        amqp_url, tmp_path, any_db_url):  # noqa: F811
    flows = Flows(amqp_url, tmp_path, any_db_url)
    worker = flows.worker_process(tmp_path, "--processes", "2", "--concurrency", "4")
    try:
        wait_until(lambda: consumers(flows.url, flows.queue) >= 2, 30, "both worker processes to consume")
        header = [sig(flows.job("square"), i, pause_s=0.02) for i in range(50)]
        wf = chord(header, sig(flows.job("collect"))).send(flows.app)
        done = flows.wait_done(wf, 60)
    finally:
        worker.stop()
    assert done["state"] == "succeeded", worker.log()[-3000:]
    assert done["result"] == [i * i for i in range(50)]
    assert len(flows.runs("collect")) == 1, "the fan-in fired once"
    members = flows.runs("square")
    assert sorted(int(a) for a, _ in members) == list(range(50))
    assert len({pid for _, pid in members}) == 2, "both processes finished members"


# --- failure policies ------------------------------------------------------------------------------


def test_failing_member_under_fail_policy_fails_the_workflow_and_cancels_what_has_not_started(flows):
    square, boom = flows.job("square"), flows.job("boom")
    wf = chord([sig(square, 1), sig(boom, 2), sig(square, 3)], sig(flows.job("collect"))).send(flows.app)
    chained = chain(sig(flows.job("add"), 1, 2), sig(boom, 7), sig(flows.job("mul"), 5)).send(flows.app)
    seen: set[str] = set()
    with worker_thread(flows.app, concurrency=4):
        wait_until(lambda: seen.add(flows.steps(wf)[1]) or flows.state(wf)["state"] != "running", 30, "end")
        done = flows.wait_done(wf)
        chain_done = flows.wait_done(chained)
    assert "failed" in seen, f"the member's first failure (a retry pending) was visible: {seen}"
    assert done["state"] == "failed"
    assert flows.steps(wf) == ["succeeded", "dead", "succeeded", "cancelled"]
    assert "boom 2" in done["steps"][1]["error"] and done["steps"][1]["attempts"] == 2
    assert flows.runs("collect") == []
    assert (chain_done["state"], flows.steps(chained)) == ("failed", ["succeeded", "dead", "cancelled"])
    assert flows.runs("mul") == []


def test_failing_member_under_continue_policy_still_runs_the_callback_with_the_failure_marked(flows):
    header = [sig(flows.job("square"), 1), sig(flows.job("boom"), 2), sig(flows.job("square"), 3)]
    wf = chord(header, sig(flows.job("collect"))).send(flows.app, on_failure="continue")
    with worker_thread(flows.app, concurrency=4):
        done = flows.wait_done(wf)
    assert done["state"] == "partial"
    assert flows.steps(wf) == ["succeeded", "dead", "succeeded", "succeeded"]
    first, marker, third = done["result"]
    assert (first, third) == (1, 9) and failed(marker) and "boom 2" in marker["$failed"]
    assert len(flows.runs("collect")) == 1


def test_a_step_whose_result_is_not_json_dies_at_once_and_fails_its_workflow(flows):
    wf = chain(sig(flows.job("fatal_result")), sig(flows.job("add"), 1)).send(flows.app)
    with worker_thread(flows.app, concurrency=2):
        done = flows.wait_done(wf)
    assert (done["state"], flows.steps(wf)) == ("failed", ["dead", "cancelled"])
    assert "must be JSON" in done["steps"][0]["error"] and done["steps"][0]["attempts"] == 1


@pytest.mark.parametrize(("policy", "child_end", "parent_end"), [("fail", "failed", "failed"),
                                                                 ("continue", "partial", "partial")])
def test_a_child_workflow_started_by_a_step_is_listed_and_its_end_decides_its_parents(
        flows, policy, child_end, parent_end):
    wf = sig(flows.job("spawn"), 3, policy).send(flows.app)
    with worker_thread(flows.app, concurrency=4):
        done = flows.wait_done(wf)
        (child,) = done["children"]
        child_state = flows.wait_done(child)
    assert done["steps"][0]["result"] == child and child_state["parent"] == wf
    assert (child_state["state"], done["state"]) == (child_end, parent_end)


def test_a_cancelled_workflow_runs_none_of_its_queued_steps(flows):
    wf = chain(sig(flows.job("add"), 1, 2), sig(flows.job("add"), 3)).send(flows.app)
    flows.workflows.cancel(wf, flows.app.clock.now_ms())
    after = sig(flows.job("mul"), 2, 3).send(flows.app)
    with worker_thread(flows.app, concurrency=1):  # one job thread: the cancelled step is handled first
        assert flows.wait_done(after)["result"] == 6
    assert (flows.state(wf)["state"], flows.steps(wf)) == ("cancelled", ["cancelled", "cancelled"])
    assert flows.runs("add") == []


# --- crashes and restarts --------------------------------------------------------------------------


def test_successor_a_crash_left_unpublished_is_sent_again_and_runs_once(flows):
    """The crash window between a step's commit and its successor's publish, made by hand: step
    0 recorded done, its successor never sent. Its redelivery and the next worker's boot sweep
    both publish the successor; it runs once."""
    wf = chain(sig(flows.job("add"), 1, 2), sig(flows.job("add"), 10)).send(flows.app)
    assert flows.app.db is not None
    with flows.app.db.transaction() as tx:
        unsent = finish_step(tx, wf, 0, SUCCEEDED, "3", None, flows.app.clock.now_ms())
    assert unsent is not None and [m.workflow for m in unsent] == [{"id": wf, "step": 1}]
    with worker_thread(flows.app, concurrency=4):
        done = flows.wait_done(wf)
    assert (done["state"], done["result"]) == ("succeeded", 13)
    assert [a for a, _ in flows.runs("add")] == ["[10, 3]"], "step 0 not run again; step 1 once"


def test_half_done_workflow_completes_after_worker_sigkill_and_broker_restart(tmp_path, any_db_url):  # noqa: F811
    port = free_port()
    broker = BrokerProcess(tmp_path / "data", port)
    broker.start()
    flows = Flows(f"amqp://guest:guest@127.0.0.1:{port}/%2F", tmp_path, any_db_url)
    gate = tmp_path / "open"
    try:
        wf = chain(sig(flows.job("add"), 1, 2), sig(flows.job("gate"), str(gate), 7),
                   sig(flows.job("add"), 100)).send(flows.app)
        flows.app.close()
        worker = flows.worker_process(tmp_path, "--concurrency", "2")
        try:
            wait_until(lambda: flows.steps(wf)[1] == "running", 30, "the workflow to be half done")
        finally:
            worker.stop()  # SIGKILL, with the gate step unacknowledged
        assert flows.steps(wf) == ["succeeded", "running", "pending"]
        broker.kill9()
        broker.start()
        gate.touch()
        worker = flows.worker_process(tmp_path, "--concurrency", "2")
        try:
            done = flows.wait_done(wf, 60)
        finally:
            worker.stop()
    finally:
        broker.kill9()
    assert (done["state"], done["result"]) == ("succeeded", 107), worker.log()[-3000:]
    assert [a for a, _ in flows.runs("add")] == ["[1, 2]", "[100, 7]"]
    assert len(flows.runs("gate")) == 1 and done["steps"][1]["attempts"] == 2


# --- building and bad input ------------------------------------------------------------------------


def test_plan_numbers_steps_and_wires_a_group_into_the_next_step_as_a_list(flows):
    a, b = flows.job("add"), flows.job("mul")
    steps = plan(chain(sig(a, 1, 1), group(sig(b, 2), sig(b, 3)), sig(a, 4)))
    assert [(s.inputs, s.mode, s.children) for s in steps] == [
        ([], "none", [1, 2]), ([0], "one", [3]), ([0], "one", [3]), ([1, 2], "list", [])]


def test_bad_workflows_fail_at_send_with_one_clear_error(flows, amqp_url):
    add = flows.job("add")
    with pytest.raises(ValueError, match="on_failure must be one of fail, continue"):
        sig(add, 1, 2).send(flows.app, on_failure="ignore")
    with pytest.raises(SerializationError, match="JSON"):
        sig(add, object(), 2).send(flows.app)
    with pytest.raises(ValueError, match="at least one"):
        group()
    with pytest.raises(ValueError, match="must end in one step"):
        plan(group(group(sig(add, 1, 1), sig(add, 2, 2))))
    with pytest.raises(ValueError, match="workflows need a store"):
        sig(add, 1, 2).send(App(amqp_url))
    with pytest.raises(KeyError, match="no workflow"):
        flows.state("nope")


def test_workflows_run_in_place_in_eager_mode(tmp_path):
    app = build("eager://", f"sqlite:///{tmp_path / 'eager.db'}", "eager")
    assert app.db is not None
    jobs, workflows = app.jobs, Workflows(app.db)
    header = [sig(jobs["square"], i) for i in range(5)]
    done = workflows.state(chord(header, sig(jobs["collect"])).send(app))
    assert (done["state"], done["result"]) == ("succeeded", [0, 1, 4, 9, 16])
    broken = workflows.state(chord(header, sig(jobs["add"], 1)).send(app))  # add(1, [...]): a TypeError
    assert (broken["state"], broken["steps"][-1]["state"]) == ("failed", "dead")
    assert broken["steps"][-1]["attempts"] == 4, "eager retries ran in place, then the policy applied"


def test_sending_from_an_app_whose_middleware_cannot_run_workflows_fails_with_one_clear_error(
        tmp_path, amqp_url):
    db = Database(f"sqlite:///{tmp_path / 'order.db'}")
    app = App(amqp_url, store=db)
    app.middleware = [WorkflowMiddleware(db), IdempotencyMiddleware(db)]
    add = app.job(name="add")(lambda x, y: x + y)
    with pytest.raises(ValueError, match="must come after IdempotencyMiddleware"):
        sig(add, 1, 2).send(app)
    app.middleware = [m for m in app.middleware if not isinstance(m, WorkflowMiddleware)]
    with pytest.raises(ValueError, match="need WorkflowMiddleware"):
        sig(add, 1, 2).send(app)


def test_members_finishing_at_once_in_many_threads_make_the_callback_ready_exactly_once(
        amqp_url, tmp_path, any_db_url):  # noqa: F811
    """The fan-in counter alone, without a worker: 40 members finished by 40 threads released
    together, each in its own transaction on its own connection."""
    flows = Flows(amqp_url, tmp_path, any_db_url)  # nothing consumes its queue
    wf = chord([sig(flows.job("square"), i) for i in range(40)], sig(flows.job("collect"))).send(flows.app)
    db, start, ready = Database(any_db_url), threading.Barrier(40), []

    def finish(n: int) -> None:
        start.wait()
        with db.transaction() as tx:
            ready.append(finish_step(tx, wf, n, SUCCEEDED, str(n * n), None, flows.app.clock.now_ms()))
        db.close()

    threads = [threading.Thread(target=finish, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    made_ready = [m for batch in ready for m in batch or []]
    assert len(ready) == 40 and [m.workflow["step"] for m in made_ready] == [40]
    assert made_ready[0].args == [[n * n for n in range(40)]]
    flows.app.close()
