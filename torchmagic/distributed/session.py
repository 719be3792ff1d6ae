"""Run one cell on every rank and bring back one honest report.

:func:`run_on_ranks` checks the cell's syntax once here (a ``SyntaxError`` is
said once, not N times), sends the cell to every rank (each runs it through
the shared runner, see :mod:`torchmagic.distributed.engine`) and watches:

* each rank's heartbeat says which line it is on and which collective it
  waits in, so a progress line can say so while the cell runs;
* ranks that wait longer than ``--timeout`` give up on their own (the
  group's timeout was set before the cell); a rank that never joins is
  interrupted once the others gave up; a rank that ignores the interrupt is
  reported as stuck;
* a rank whose process is gone is reported as dead;
* an interrupt of the kernel interrupts every rank.

Afterwards, if a collective broke the process group, it is rebuilt on a
fresh port on every rank: the ranks' variables survive.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from torchmagic.core.text import exc_line
from torchmagic.distributed.flight import describe
from torchmagic.distributed.fold import build, explain_hang, ranks_text, state_text
from torchmagic.distributed.options import RunOptions
from torchmagic.distributed.report import DistributedReport, RankError, RankReport, Wait
from torchmagic.i18n import tr

__all__ = ["DistributedCellError", "run_on_ranks", "failure_line"]

GRACE_S = 1.0  # a finished rank's peers may still be finishing their own last collective
GIVE_UP_S = 5.0  # after an interrupt, how long a rank may take to stop before it is called stuck


class DistributedCellError(Exception):
    """A ``%%distributed`` cell failed on some rank(s); the report above says where and why."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows this instead of a traceback: the ranks' own tracebacks are in the report."""
        return [f"{type(self).__name__}: {self}"]


class _Watch:
    """The state of one cell on the ranks while the notebook waits."""

    def __init__(self, pool: Any, jobs: list[Any], timeout: float, progress: Callable[[str], None]) -> None:
        self.pool = pool
        self.jobs = jobs
        self.timeout = timeout
        self.progress = progress
        self.n = len(jobs)
        self.t0 = time.monotonic()
        self.interrupted = False
        self.interrupted_at: dict[int, float] = {}  # rank -> when we sent it SIGINT
        self.stuck: set[int] = set()
        self.stopped_by_us: set[int] = set()
        self.first_failure = 0.0
        self.gave_up = False  # a rank came back from a collective's timeout: the rest cannot finish

    def beat(self, rank: int) -> tuple[Any, ...] | None:
        data = self.jobs[rank].data
        value = data.get("torchmagic") if isinstance(data, dict) else None
        return tuple(value) if value else None

    def pending(self) -> list[int]:
        return [
            r for r in range(self.n) if not self.jobs[r].ready() and r not in self.pool.dead and r not in self.stuck
        ]

    def failed_finished(self) -> list[int]:
        out = []
        for r in range(self.n):
            j = self.jobs[r]
            if j.ready():
                try:
                    rep = j.get(0)
                except Exception:  # noqa: BLE001 - a reply that cannot be read counts as a failed rank
                    out.append(r)
                    continue
                if getattr(rep, "error", None) is not None:
                    out.append(r)
        return out

    def run(self) -> None:
        """Wait for every rank; an interrupt (SIGINT: Ctrl-C, Jupyter's stop button) is passed on to the ranks.

        While waiting, SIGINT only sets a flag that the loop reads: a
        KeyboardInterrupt raised somewhere inside ipyparallel's waiting could
        be swallowed there.  A second interrupt stops waiting at once.
        """
        asked: list[int] = []
        previous = _catch_sigint(asked)
        try:
            self._loop(asked)
        finally:
            _restore_sigint(previous)

    def _loop(self, asked: list[int]) -> None:
        last_dead_check = 0.0
        while True:
            pending = self.pending()
            if not pending:
                return
            try:
                self.pool.client.wait([self.jobs[r] for r in pending], timeout=0.05)
            except KeyboardInterrupt:
                asked.append(1)
            if len(asked) >= 2:  # a second interrupt: stop waiting now
                self.interrupted = True
                self.stuck |= set(self.pending())
                return
            if asked and not self.interrupted:
                self.interrupted = True
                self._interrupt(self.pending())
                continue
            now = time.monotonic()
            if now - last_dead_check > 0.5:
                last_dead_check = now
                self.pool.find_dead()
            self._decide(now)
            self.progress(self._describe())

    def _decide(self, now: float) -> None:
        pending = self.pending()
        if not pending:
            return
        failed = self.failed_finished() or sorted(self.pool.dead)
        if failed and not self.first_failure:
            self.first_failure = now
        if not failed:
            return
        if not self.gave_up:
            self.gave_up = bool(self.pool.dead) or any(self._kind(r) == "timeout" for r in failed)
        # after a timeout nobody can finish; after an exception the others get the timeout's time
        wait = GRACE_S if self.gave_up else self.timeout + GRACE_S
        if now - self.first_failure > wait:
            self._interrupt([r for r in pending if r not in self.interrupted_at], by_us=True)
        for r, t in list(self.interrupted_at.items()):
            if r in pending and now - t > max(GIVE_UP_S, self.timeout + GRACE_S):
                self.stuck.add(r)

    def _kind(self, rank: int) -> str:
        try:
            e = self.jobs[rank].get(0).error
        except Exception:  # noqa: BLE001 - a reply that cannot be read means the rank died
            return "dead"
        return e.kind if e is not None else ""

    def _interrupt(self, ranks: list[int], by_us: bool = False) -> None:
        if not ranks:
            return
        self.pool.interrupt(ranks)
        now = time.monotonic()
        for r in ranks:
            self.interrupted_at.setdefault(r, now)
            if by_us:
                self.stopped_by_us.add(r)

    def _describe(self) -> str:
        parts = []
        for r in self.pending():
            b = self.beat(r)
            _, state, line, op, _since = b if b is not None else (r, "running", 0, "", 0.0)
            if state == "collective" and op and line:
                parts.append(tr("rank {rank} waits in {op} at line {line}", rank=r, op=op, line=line))
            elif state == "collective" and op:
                parts.append(tr("rank {rank} waits in {op}", rank=r, op=op))
            elif line:
                parts.append(tr("rank {rank} at line {line}", rank=r, line=line))
            else:
                parts.append(tr("rank {rank} running", rank=r))
        return "; ".join(parts[:8]) + (" …" if len(parts) > 8 else "")


def _catch_sigint(asked: list[int]) -> Any:
    """Count SIGINTs into ``asked`` instead of raising (main thread only; elsewhere nothing changes)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: asked.append(signum))


def _restore_sigint(previous: Any) -> None:
    import signal

    if previous is not None:
        signal.signal(signal.SIGINT, previous)


def _missing(pool: Any, watch: _Watch, rank: int) -> RankReport:
    """The report of a rank that sent none: it died or is stuck."""
    b = watch.beat(rank)
    line = int(b[2]) if b else 0
    restart = "%distributed restart"
    if rank in pool.dead:
        pid = pool.pids[rank]
        message = (
            tr(
                "the rank's process (PID {pid}) died at line {line}; {restart} starts a new pool",
                pid=pid,
                line=line,
                restart=restart,
            )
            if line
            else tr("the rank's process (PID {pid}) died; {restart} starts a new pool", pid=pid, restart=restart)
        )
        err = RankError("dead", "", message)
    else:
        message = (
            tr(
                "the rank did not stop at line {line} after an interrupt; {restart} starts a new pool",
                line=line,
                restart=restart,
            )
            if line
            else tr("the rank did not stop after an interrupt; {restart} starts a new pool", restart=restart)
        )
        err = RankError("stuck", "", message)
    return RankReport(rank=rank, host=pool.hosts[rank], pid=pool.pids[rank], seconds=0.0, error=err)


def _broke_group(r: RankReport) -> bool:
    e = r.error
    if e is None:
        return False
    if e.kind in ("timeout", "released", "interrupted", "stopped"):
        return True
    text = f"{e.type} {e.message}"
    return any(k in text for k in ("gloo", "Connection closed", "DistBackendError", "NCCL", "Broken pipe"))


def run_on_ranks(
    pool: Any, shell: Any, source: str, header: str, options: RunOptions, progress: Callable[[str], None]
) -> tuple[DistributedReport, bool]:
    """Run the cell on every rank; returns (the report, whether the kernel was interrupted)."""
    __tracebackhide__ = True
    from torchmagic.core.cell import Cell
    from torchmagic.distributed import engine

    cell = Cell.compile(shell, source, header)  # a SyntaxError is the user's, said once
    t0 = time.perf_counter()
    jobs = pool.submit(engine.run, source, header, options)
    watch = _Watch(pool, jobs, options.distributed_timeout, progress)
    watch.run()
    reports: list[RankReport] = []
    for r, job in enumerate(jobs):
        rep: RankReport | None = None
        if job.ready():
            try:
                rep = job.get(0)
            except Exception as exc:  # noqa: BLE001 - said in the report: a dead engine, or torchmagic failing there
                if type(exc).__name__ == "EngineError" or r in pool.find_dead():
                    pool.dead.add(r)
                else:  # the rank is alive: our side of the cell failed there, not the user's code
                    msg = tr("torchmagic could not report this rank ({error}); its cell did run", error=exc_line(exc))
                    rep = RankReport(
                        rank=r, host=pool.hosts[r], pid=pool.pids[r], seconds=0.0, error=RankError("internal", "", msg)
                    )
        reports.append(rep if rep is not None else _missing(pool, watch, r))
    for r in watch.stopped_by_us:
        e = reports[r].error
        if e is not None and e.kind == "interrupted":
            e.kind = "stopped"
            e.message = tr("stopped by torchmagic: the other ranks had given up waiting for this one")
    hang = None
    if any(
        r.error is not None and r.error.kind in ("timeout", "released", "stopped", "dead", "stuck") for r in reports
    ):
        waits = [replace(w, source=cell.line(w.line)) if w.line else w for w in _final_waits(reports, watch)]
        hang = explain_hang(waits, options.distributed_timeout, released=not watch.stuck)
    notes: tuple[str, ...] = ()
    if any(_broke_group(r) for r in reports) and pool.options and pool.options.init:
        restart = "%distributed restart"
        if pool.dead or watch.stuck:
            notes += (tr("the process group cannot be rebuilt without every rank: {restart}", restart=restart),)
        elif pool.rebuild():
            notes += (
                tr(
                    "the process group was rebuilt on every rank (variables kept; "
                    "groups and device meshes made by the cell must be made again)"
                ),
            )
        else:
            notes += (tr("rebuilding the process group failed: {restart}", restart=restart),)
    report = build(
        header,
        pool.backend,
        reports,
        cell.lines,
        time.perf_counter() - t0,
        options.distributed_max_rows,
        hang=hang,
        trace=options.trace,
        notes=notes,
    )
    return report, watch.interrupted


def _final_waits(reports: list[RankReport], watch: _Watch) -> list[Wait]:
    """Who waited where, from each rank's last heartbeat (published before it was released) and its error."""
    waits = []
    for r in reports:
        b = watch.beat(r.rank)
        line = int(b[2]) if b else 0
        op = str(b[3]) if b and b[1] == "collective" else ""
        pending = [c for c in r.collectives if not c.done]
        if pending and not op:  # the flight recorder, read after the cell, still holds what it waited in
            op, line = describe(pending[-1]), pending[-1].line or line
        e = r.error
        if e is None:
            waits.append(Wait(r.rank, "done"))
        elif e.kind == "exception" and not op:
            waits.append(Wait(r.rank, "failed", e.line, "", f"{e.type}: {e.message}"))
        elif e.kind in ("timeout", "released") or op:
            waits.append(Wait(r.rank, "collective", line or e.line, "", op or tr("a collective")))
        else:
            waits.append(Wait(r.rank, "running" if e.kind in ("stopped", "interrupted") else e.kind, line or e.line))
    return waits


def failure_line(report: DistributedReport) -> str:
    """The one line the failing cell raises: which ranks failed and how."""
    parts = []
    for r in report.ranks:
        e = r.error
        if e is None:
            continue
        if e.kind == "exception":
            error = f"{e.type}: {e.message}" if e.message else e.type
        elif e.kind == "timeout":
            error = tr("released from a collective after the timeout")
        elif e.kind == "released":
            error = tr("released from a collective (a peer's connection closed)")
        else:
            error = e.message or state_text(e.kind)
        parts.append(tr("rank {rank}: {error}", rank=r.rank, error=error))
    failed = ranks_text(list(report.failed))
    head = (
        tr("{ranks} failed ({reason})", ranks=failed, reason=report.hang.reason)
        if report.hang is not None
        else tr("{ranks} failed", ranks=failed)
    )
    details = "; ".join(parts[:4]) + (" …" if len(parts) > 4 else "")
    return tr("{head} — {details} (see the report above)", head=head, details=details)
