"""The rank pool: N ipyparallel engines, each a rank of one torch.distributed process group.

We do not manage processes ourselves: ipyparallel starts, signals and stops
engines, and its launchers are how a pool goes past one machine (MPI,
Slurm, SSH, or engines started by hand that join with the controller's
connection file: ``launcher="external"``).  What this module adds is the
torch side: ranks in a stable order, the environment torchrun would give
each one (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``), the process group (gloo on CPU, nccl when every rank has
its own GPU), rebuilding the group after a collective failed, and knowing
which rank processes are alive (by PID for engines on this host).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import time
import weakref
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from torchmagic.distributed.options import PoolOptions
from torchmagic.distributed.report import PoolStatus
from torchmagic.i18n import N_, tr, trn

__all__ = ["RankPool", "BACKENDS", "LAUNCHERS", "check_backend", "free_port"]

BACKENDS = ("gloo", "nccl", "mpi")
LAUNCHERS = ("local", "mpi", "slurm", "ssh", "external")
_POOLS: weakref.WeakSet[RankPool] = weakref.WeakSet()
# What the pool waits for while starting: (progress line, the error when it takes too long); tr() at use.
_IMPORTING = (
    N_("importing torch: {done}/{total} ranks ready"),
    N_("importing torch on the ranks took longer than {timeout} s"),
)
_STARTING_GROUP = (
    N_("starting the process group: {done}/{total} ranks ready"),
    N_("starting the process group on the ranks took longer than {timeout} s"),
)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (for the rank-0 store)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_backend(backend: str, world: int, launcher: str) -> str:
    """The backend to use, or one clear ``UsageError`` line (before any process starts)."""
    if backend == "auto":
        backend = "gloo"
        if launcher == "local" and _may_have_gpus():
            try:
                import torch

                if torch.cuda.is_available() and torch.cuda.device_count() >= world:
                    backend = "nccl"
            except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
                pass
        return backend
    if backend not in BACKENDS:
        raise UsageError(
            tr("unknown backend {backend}: use gloo (CPU), nccl (one GPU per rank), mpi or auto", backend=repr(backend))
        )
    if backend == "nccl" and launcher == "local":
        import torch

        have = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if have < world:
            raise UsageError(
                trn(
                    "nccl needs one GPU per rank: {world} ranks, {n} GPU here (use {flag} on CPU)",
                    "nccl needs one GPU per rank: {world} ranks, {n} GPUs here (use {flag} on CPU)",
                    have,
                    world=world,
                    flag="--backend gloo",
                )
            )
    return backend


def _secs(seconds: float) -> str:
    return f"{seconds:g}"


def _may_have_gpus() -> bool:
    """Whether asking torch about CUDA is worth importing it here (seconds, when nothing else did)."""
    import glob
    import sys

    return (
        "torch" in sys.modules or bool(glob.glob("/dev/nvidia[0-9]*")) or bool(os.environ.get("CUDA_VISIBLE_DEVICES"))
    )


class RankPool:
    """A pool of rank processes that persist across cells (one per notebook)."""

    def __init__(self) -> None:
        self.cluster: Any = None
        self.client: Any = None
        self.engines: list[int] = []  # ipyparallel engine id of each rank
        self.hosts: list[str] = []
        self.pids: list[int] = []
        self.devices: list[str] = []
        self.options: PoolOptions | None = None
        self.backend = ""
        self.master = ""
        self.dead: set[int] = set()
        _POOLS.add(self)

    @property
    def running(self) -> bool:
        return self.client is not None

    @property
    def world(self) -> int:
        return len(self.engines)

    # -- lifecycle ------------------------------------------------------------------
    def start(self, options: PoolOptions, progress: Callable[[str], None] = lambda s: None) -> None:
        """Start N engines, give each its rank and the process group; stop everything on failure or interrupt."""
        import ipyparallel as ipp

        n = options.distributed_ranks
        if n < 1:
            raise UsageError(tr("{flag} must be at least 1, not {n}", flag="-n", n=n))
        backend = check_backend(options.distributed_backend, n, options.launcher)
        if self.running:
            self.stop()
        self.options = options
        engines = None if options.launcher == "external" else options.launcher
        progress(tr("starting {n} rank processes", n=n))
        # schedulers as threads of the controller, not processes of their own: a second less to start
        kwargs: dict[str, Any] = {"n": n if engines else 0, "log_level": 40, "controller_args": ["--usethreads"]}
        if engines:
            kwargs["engines"] = engines
        if options.launcher != "local":
            kwargs["controller_ip"] = "*"  # remote engines must reach the controller
        if engines == "local":
            kwargs["config"] = _preloading_engines()
        try:
            self.cluster = ipp.Cluster(**kwargs)
            self.cluster.start_controller_sync()
            if engines:
                self.cluster.start_engines_sync(n)
            else:
                command = f"ipengine --file={self.engine_file()}"
                progress(tr("waiting for {n} engines: start them with `{command}`", n=n, command=command))
            self.client = self.cluster.connect_client_sync()
            self._wait_for(n, options.distributed_start_timeout, progress)
            self._setup(backend, options, progress)
        except BaseException:
            self.stop()
            raise
        self.backend = backend

    def engine_file(self) -> str:
        """The connection file engines started elsewhere join with (``ipengine --file=...``)."""
        c = self.cluster
        return os.path.join(c.profile_dir, "security", f"ipcontroller-{c.cluster_id}-engine.json")

    def _wait_for(self, n: int, timeout: float, progress: Callable[[str], None]) -> None:
        t0 = time.monotonic()
        while len(self.client.ids) < n:
            up = len(self.client.ids)
            if time.monotonic() - t0 > timeout:
                raise UsageError(
                    tr(
                        "only {up} of {n} rank processes started within {timeout} s ({option})",
                        up=up,
                        n=n,
                        timeout=_secs(timeout),
                        option="TorchMagics.distributed_start_timeout",
                    )
                )
            progress(tr("starting {n} rank processes: {up}/{n} up", n=n, up=up))
            time.sleep(0.05)

    def _setup(self, backend: str, options: PoolOptions, progress: Callable[[str], None]) -> None:
        from torchmagic.distributed import engine

        n = options.distributed_ranks
        ids = sorted(self.client.ids)[:n]
        self.engines = ids
        progress(tr("{n}/{n} up; importing torch on every rank", n=n))
        where = [self.client[e].apply_async(_host_pid) for e in ids]
        self._gather(where, options.distributed_start_timeout, progress, _IMPORTING)
        found = [w.get() for w in where]
        self.hosts = [h for h, _ in found]
        here = socket.gethostname()
        local = all(h == here for h in self.hosts)
        self.master = options.master_addr or ("127.0.0.1" if local else self.hosts[0])
        port = free_port() if local else self.client[ids[0]].apply_sync(free_port, "")
        local_ranks = [self.hosts[:r].count(self.hosts[r]) for r in range(n)]
        progress(
            tr("starting the {backend} process group on {n} ranks", backend=backend, n=n)
            if options.init
            else tr("setting up ranks")
        )
        jobs = [
            self.client[e].apply_async(
                engine.setup,
                r,
                n,
                local_ranks[r],
                self.master,
                port,
                backend,
                options.init,
                options.distributed_max_collectives,
                30.0,
            )
            for r, e in enumerate(ids)
        ]
        self._gather(jobs, options.distributed_start_timeout, progress, _STARTING_GROUP)
        out = [j.get() for j in jobs]
        self.pids = [pid for _, pid, _ in out]
        self.devices = [d for _, _, d in out]
        self.dead = set()

    def _gather(self, jobs: list[Any], timeout: float, progress: Callable[[str], None], step: tuple[str, str]) -> None:
        """Wait for ``jobs``; ``step`` is (progress message, too-slow message) of what they do."""
        t0 = time.monotonic()
        ready, too_slow = step
        while not all(j.ready() for j in jobs):
            if time.monotonic() - t0 > timeout:
                raise UsageError(tr(too_slow, timeout=_secs(timeout)))
            done = sum(j.ready() for j in jobs)
            progress(tr(ready, done=done, total=len(jobs)))
            self.client.wait(jobs, timeout=0.05)

    def stop(self) -> None:
        """Stop every engine and the controller; no process is left behind."""
        cluster, client = self.cluster, self.client
        self.cluster = self.client = None
        self.engines, self.pids, self.hosts, self.devices = [], [], [], []
        if client is not None:
            try:  # engines we did not launch (external, remote) are asked to exit
                if client.ids:
                    client.shutdown(targets="all", block=True)
            except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
                pass
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
                pass
        if cluster is not None:
            try:
                cluster.stop_cluster_sync()
            except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
                pass

    def restart(self, progress: Callable[[str], None] = lambda s: None) -> None:
        """A fresh pool with the same options (every rank's variables are gone)."""
        options = self.options
        if options is None:
            raise UsageError(tr("no pool to restart: {command}", command="%distributed start -n N"))
        self.stop()
        self.start(options, progress)

    # -- talking to ranks -------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """Call ``fn(*args)`` on every rank; one AsyncResult per rank, in rank order."""
        return [self.client[e].apply_async(fn, *args) for e in self.engines]

    def local_pids(self) -> dict[int, int]:
        """rank -> PID for ranks on this host (whose liveness we can check ourselves)."""
        here = socket.gethostname()
        return {r: pid for r, (pid, host) in enumerate(zip(self.pids, self.hosts)) if host == here}

    def find_dead(self) -> set[int]:
        """Ranks whose process is gone (PID check on this host, the controller's view elsewhere)."""
        import psutil

        gone = set()
        for rank, pid in self.local_pids().items():
            try:
                proc = psutil.Process(pid)
                if proc.status() == psutil.STATUS_ZOMBIE:
                    gone.add(rank)
            except psutil.NoSuchProcess:
                gone.add(rank)
        if self.client is not None:
            alive = set(self.client.ids)
            gone |= {r for r, e in enumerate(self.engines) if e not in alive}
        self.dead |= gone
        return gone

    def interrupt(self, ranks: list[int] | None = None) -> None:
        """SIGINT the given ranks (all by default): Python code on them raises KeyboardInterrupt."""
        targets = range(self.world) if ranks is None else ranks
        local = self.local_pids()
        for r in targets:
            if r in self.dead:
                continue
            if r in local:
                try:
                    os.kill(local[r], signal.SIGINT)
                except ProcessLookupError:
                    self.dead.add(r)
            elif self.cluster is not None:
                try:
                    self.cluster.signal_engines_sync(signal.SIGINT)
                except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
                    pass
                return

    def rebuild(self, timeout: float = 30.0) -> bool:
        """Destroy and re-create the process group on every rank (fresh port); variables stay."""
        from torchmagic.distributed import engine

        if self.dead or not self.engines:
            return False
        local = all(h == socket.gethostname() for h in self.hosts)
        port = free_port() if local else self.client[self.engines[0]].apply_sync(free_port, "")
        jobs = self.submit(engine.rebuild, port)
        self.client.wait(jobs, timeout=timeout)
        return all(j.ready() and j.successful() for j in jobs)

    def status(self) -> PoolStatus:
        if not self.running:
            return PoolStatus(
                running=False,
                message=tr(
                    "no pool: {command} (or {cell})", command="%distributed start -n N", cell="%%distributed -n N"
                ),
            )
        dead = self.find_dead()
        opts = self.options
        return PoolStatus(
            running=True,
            world_size=self.world,
            backend=self.backend,
            launcher=opts.launcher if opts else "",
            master=self.master,
            initialised=bool(opts and opts.init),
            ranks=tuple(
                (r, self.hosts[r], self.pids[r], "dead" if r in dead else f"alive ({self.devices[r]})")
                for r in range(self.world)
            ),
            message=(
                trn(
                    "rank {ranks} died: {command}",
                    "ranks {ranks} died: {command}",
                    len(dead),
                    ranks=", ".join(map(str, sorted(dead))),
                    command="%distributed restart",
                )
                if dead
                else ""
            ),
        )


# Each local engine starts importing torch in a thread as soon as its process starts, while the
# engine itself imports IPython and registers with the controller (mostly waiting on sockets).
_PRELOAD = (
    "import threading; threading.Thread(target=__import__, args=('torch',), daemon=True).start(); "
    "from ipyparallel.engine.app import main; main()"
)


def _preloading_engines() -> Any:
    import sys

    from traitlets.config import Config

    config = Config()
    config.LocalEngineLauncher.engine_cmd = [sys.executable, "-c", _PRELOAD]
    return config


def _host_pid() -> tuple[str, int]:
    """On an engine: its host and PID, after importing torch (so the next step does not wait for it)."""
    import os
    import socket

    import torch  # noqa: F401  - imported on all ranks at once, while we wait

    return socket.gethostname(), os.getpid()


@atexit.register
def _stop_all() -> None:
    """The kernel is ending: stop every pool (no rank process outlives its notebook)."""
    for pool in list(_POOLS):
        try:
            pool.stop()
        except Exception:  # noqa: BLE001, S110 - stopping or probing processes that may already be gone
            pass
