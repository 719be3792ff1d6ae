"""The rank side of ``%%distributed``: what runs inside each engine process.

The pool calls :func:`setup` once per rank (the environment torchrun would
give, the process group, a heartbeat thread), then :func:`run` for every
cell.  :func:`run` goes through the same runner as every other magic
(:func:`torchmagic.core.runner.run_cell`) in the engine's own IPython shell,
with this rank's collectors, captures what the rank printed and displayed,
and returns a :class:`~torchmagic.distributed.report.RankReport`: plain data,
nothing the notebook would have to unpickle torch for.

The heartbeat thread is how the notebook sees a rank that is stuck in C++
(a collective waiting for a peer holds no Python frame that could report):
every 0.2 s it looks at the main thread's stack — which cell line, and, once
the line has not moved for a while, which collective is still pending in the
flight recorder — and publishes that through ipyparallel's data channel
when it changes.  Waiting in gloo releases the GIL, so the thread runs.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from torchmagic.distributed.report import RankError, RankReport
from torchmagic.i18n import set_language, tr

__all__ = ["setup", "run", "rebuild", "where", "STATE"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BEAT_S = 0.2
STUCK_S = 0.6  # the line has not moved this long: ask the flight recorder what is pending
TB_LINES = 80


class _State:
    """This rank's identity and what it is doing (one per engine process)."""

    def __init__(self) -> None:
        self.rank = -1
        self.world = 0
        self.backend = ""
        self.init = False
        self.host = socket.gethostname()
        self.cell: str | None = None  # the running cell's filename
        self.lines: list[str] = []
        self.mark = -1  # the newest flight-recorder record already reported
        self.started_ns = 0
        self.timeout = 0.0
        self.beat: threading.Thread | None = None
        self.published: Any = None


STATE = _State()


def setup(
    rank: int,
    world: int,
    local_rank: int,
    master_addr: str,
    master_port: int,
    backend: str,
    init: bool,
    fr_entries: int,
    timeout: float,
) -> tuple[str, int, str]:
    """Give this engine rank ``rank``'s environment and (unless ``init`` is false) its process group.

    Returns (host, pid, device).  Called on every rank at the same time: the
    group's rendezvous is a collective.
    """
    from torchmagic.distributed import flight

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(local_rank),
        LOCAL_WORLD_SIZE=os.environ.get("LOCAL_WORLD_SIZE", str(world)),
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
    )
    flight.enable(fr_entries)
    import torch
    import torch.distributed as dist

    if world > 1 and "OMP_NUM_THREADS" not in os.environ:  # as torchrun does: N ranks share the cores
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)

    STATE.rank, STATE.world, STATE.backend, STATE.init = rank, world, backend, init
    device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if init and not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=max(timeout, 1.0)))
        dist.barrier()  # every rank is up; and the heartbeat's first flight-recorder read has an entry to warm up on
    _start_beat()
    _load_magics()
    return STATE.host, os.getpid(), device


def _load_magics() -> None:
    """``%tensorinfo`` and the other magics work inside ``%%distributed`` cells too."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.extension_manager.load_extension("torchmagic")
    except Exception:  # noqa: BLE001, S110 - the cells still run; only the magics are missing on the ranks
        pass


def rebuild(master_port: int) -> bool:
    """Destroy this rank's process groups and make the default one again on a fresh port.

    After a timed-out or broken collective, gloo's pairs are closed; a new
    group (on every rank at once) works again, and every Python variable on
    the rank is untouched.  Groups the user made (``new_group``, device
    meshes) must be made again: their communicators are gone.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001, S110 - a broken group may fail to say goodbye; it is gone either way
            pass
    if not STATE.init:
        return False
    os.environ["MASTER_PORT"] = str(master_port)
    dist.init_process_group(
        STATE.backend, rank=STATE.rank, world_size=STATE.world, timeout=timedelta(seconds=max(STATE.timeout, 1.0))
    )
    return True


def where() -> tuple[int, str, int]:
    """(rank, host, pid): for ``%distributed status``."""
    return STATE.rank, STATE.host, os.getpid()


# -- running a cell ---------------------------------------------------------------
def run(source: str, header: str, options: Any) -> RankReport:
    """Run one cell on this rank through the shared runner; everything it did comes back as data."""
    from IPython import get_ipython
    from IPython.utils.capture import capture_output

    from torchmagic.core.runner import run_cell

    shell = get_ipython()
    t0 = time.perf_counter()
    set_language(str(getattr(options, "language", "auto")))  # explanations and notes in the notebook's language
    STATE.started_ns = time.time_ns()
    _set_timeout(float(options.distributed_timeout))
    collectors: list[Any] = []
    shown: list[Any] = []
    filename: list[str] = []

    def start(cell: Any) -> list[Any]:
        from torchmagic.distributed.collect import rank_collectors

        STATE.lines = cell.lines
        STATE.cell = cell.filename
        filename.append(cell.filename)
        collectors.extend(rank_collectors(cell, shell, options, STATE))
        return collectors

    value: Any = None
    error: BaseException | None = None
    with capture_output(stdout=True, stderr=True, display=True) as cap:
        try:
            value = run_cell(shell, source, header, start, shown.append)
        except BaseException as exc:  # noqa: BLE001 - the user's (or an interrupt): reported, never raised on the engine
            error = exc
        finally:
            STATE.cell = None
    report = RankReport(
        rank=STATE.rank,
        host=STATE.host,
        pid=os.getpid(),
        seconds=time.perf_counter() - t0,
        stdout=cap.stdout,
        stderr=cap.stderr,
        displays=tuple(_bundle(o.data) for o in cap.outputs[:20]),
    )
    if value is not None:
        report.value, report.value_html = _format_value(shell, value, int(options.distributed_value_chars))
    if error is not None:
        report.error = _error(shell, error, filename[0] if filename else "")
        error = None  # no cycle through this frame
    from torchmagic.distributed.collect import fill

    try:
        fill(report, collectors, shown)
    except Exception as exc:  # noqa: BLE001 - the rank's outcome still comes back, with one note
        failure = f"{type(exc).__name__}: {exc}"
        report.notes += (tr("torchmagic: reading this rank's recordings failed ({error})", error=failure),)
    return report


def _set_timeout(seconds: float) -> None:
    """Let every collective of every group give up after ``seconds`` (so a hang ends)."""
    if seconds <= 0 or seconds == STATE.timeout:
        return
    import torch.distributed as dist
    from torch.distributed import distributed_c10d as c10d

    if not dist.is_initialized():
        return
    try:
        for pg in list(c10d._world.pg_map):
            c10d._set_pg_timeout(timedelta(seconds=seconds), pg)
        STATE.timeout = seconds
    except Exception:  # noqa: BLE001, S110 - an older torch without per-group timeouts: the default group's stays
        pass


def _bundle(data: Any) -> dict[str, str]:
    keep = ("text/plain", "text/html", "image/png", "image/svg+xml")
    return {k: str(v)[:200_000] for k, v in dict(data or {}).items() if k in keep}


def _format_value(shell: Any, value: Any, limit: int) -> tuple[str, str]:
    try:
        data, _ = shell.display_formatter.format(value)
    except Exception:  # noqa: BLE001 - the rank must keep serving cells whatever this step meets
        return repr(value)[:limit], ""
    text = str(data.get("text/plain", ""))
    html = str(data.get("text/html", ""))
    if len(text) > limit:
        text = text[:limit] + " " + tr("… ({n} more characters)", n=len(text) - limit)
    return text, html if len(html) <= 20 * limit else ""


def _error(shell: Any, exc: BaseException, filename: str) -> RankError:
    from torchmagic.core.cell import trim_traceback
    from torchmagic.core.text import first_line

    kind = "exception"
    if isinstance(exc, KeyboardInterrupt):
        kind = "interrupted"
    elif _is_timeout(exc):
        kind = "timeout"
    elif _is_peer_gone(exc):
        kind = "released"
    tb_start = trim_traceback(exc.__traceback__, filename) if filename else exc.__traceback__
    line = _cell_line(tb_start, filename)
    try:
        stb = shell.InteractiveTB.structured_traceback(type(exc), exc, tb_start, tb_offset=0)
        tb = _ANSI.sub("", "\n".join(stb))
    except Exception:  # noqa: BLE001 - the rank must keep serving cells whatever this step meets
        tb = f"{type(exc).__name__}: {exc}"
    lines = tb.splitlines()
    if len(lines) > TB_LINES:
        tb = "\n".join([*lines[:10], tr("… {n} lines …", n=len(lines) - TB_LINES), *lines[-(TB_LINES - 10) :]])
    explanation = None
    if isinstance(exc, Exception) and kind == "exception":
        try:
            from torchmagic.trace.failing import explain_exception

            explanation = explain_exception(exc, shell)
        except Exception:  # noqa: BLE001 - the rank must keep serving cells whatever this step meets
            explanation = None
    return RankError(
        kind=kind,
        type=type(exc).__name__,
        message=first_line(str(exc)),
        traceback=tb,
        explanation=explanation,
        line=line,
    )


def _cell_line(tb: Any, filename: str) -> int:
    """The innermost line of the cell in a traceback (0 when the cell is not in it)."""
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _is_peer_gone(exc: BaseException) -> bool:
    """gloo/nccl saying a peer closed its connection (it died, or its group was destroyed)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("Connection closed by peer" in text or "Connection reset" in text)


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("Timed out" in text or "timed out" in text or "Timeout" in text)


# -- the heartbeat -------------------------------------------------------------------
def _start_beat() -> None:
    if STATE.beat is not None and STATE.beat.is_alive():
        return
    main = threading.main_thread().ident
    beat = threading.Thread(target=_beat_loop, args=(main, _publisher()), name="torchmagic-heartbeat", daemon=True)
    STATE.beat = beat
    beat.start()


def _publisher() -> Callable[[Any], None]:
    try:
        from ipyparallel.datapub import publish_data
    except ImportError:  # not in an engine (tests call the loop directly)
        return lambda data: None
    return lambda data: publish_data({"torchmagic": data})


def _beat_loop(main: int | None, publish: Callable[[Any], None]) -> None:
    try:  # the recorder's first read with stacks costs about a second: pay it now, in the background, not in a hang
        import torch.distributed as dist

        from torchmagic.distributed import flight

        if dist.is_initialized():
            flight.read_entries()
    except Exception:  # noqa: BLE001, S110 - the rank must keep serving cells whatever this step meets
        pass
    last_key: Any = None
    since = time.time()
    pending = ""
    asked = False
    while True:
        time.sleep(BEAT_S)
        try:
            cell = STATE.cell
            if cell is None:
                last_key, pending, asked = None, "", False
                continue
            frame = sys._current_frames().get(main or -1)
            line, key = _position(frame, cell)
            now = time.time()
            if key != last_key:  # moved: in a collective called from Python we know its name at once
                last_key, since, pending, asked = key, now, _c10d_call(frame), False
            elif not asked and now - since >= STUCK_S:  # stuck: the flight recorder adds shapes and dtype
                asked = True
                pending = _pending() or pending or _c10d_call(frame)
            state = (STATE.rank, "collective" if pending else "running", line, pending, since)
            if state != STATE.published:
                STATE.published = state
                publish(state)
            del frame
        except Exception:  # noqa: BLE001, S112 - the heartbeat must never take the rank down
            continue


def _position(frame: Any, cell: str) -> tuple[int, Any]:
    """(cell line, a key that changes whenever the main thread moves)."""
    from torchmagic.core.cell import cell_lineno

    line = cell_lineno(cell, frame)
    inner = (frame.f_code, frame.f_lasti) if frame is not None else None
    return line, (line, inner)


def _c10d_call(frame: Any) -> str:
    """The torch.distributed function the main thread is in ('' when none): the fallback for ``_pending``."""
    depth = 0
    while frame is not None and depth < 60:
        path = frame.f_code.co_filename.replace(os.sep, "/")
        if path.endswith("torch/distributed/distributed_c10d.py") and not frame.f_code.co_name.startswith("_"):
            return frame.f_code.co_name
        frame = frame.f_back
        depth += 1
    return ""


def _pending() -> str:
    """The collective this rank waits in, from the flight recorder ('' when none is pending)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return ""
    from torchmagic.distributed import flight

    try:
        entries, _ = flight.read_entries()
    except Exception:  # noqa: BLE001 - the rank must keep serving cells whatever this step meets
        return ""
    calls = flight.to_collectives(entries, STATE.cell or "", after=STATE.mark, since_ns=STATE.started_ns)
    waiting = [c for c in calls if not c.done]
    return flight.describe(waiting[-1]) if waiting else ""
