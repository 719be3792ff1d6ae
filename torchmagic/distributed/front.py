"""What the ``%distributed`` / ``%%distributed`` magics do with their parsed line (kept out of magics.py).

One pool per magics object (so per shell); it persists across cells until
``%distributed stop``, ``%unload_ext torchmagic`` or the end of the kernel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from torchmagic.distributed.options import PoolOptions, RunOptions
from torchmagic.distributed.pool import LAUNCHERS, RankPool
from torchmagic.distributed.progress import Progress
from torchmagic.i18n import language, tr, trn
from torchmagic.options import options_for

__all__ = ["Front"]

COMMANDS = ("start", "stop", "restart", "status")


def check_ranks(n: Any) -> int:
    if n is None:
        return 0
    if n < 1:
        raise UsageError(tr("{flag} must be a whole number of at least 1, not {n}", flag="-n", n=n))
    return int(n)


class Front:
    """The pool of one shell and the three things users do with it: manage it, run cells, look at it."""

    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self.pool = RankPool()

    @property
    def shell(self) -> Any:
        return self.magics.shell

    def pool_options(self, args: Any) -> PoolOptions:
        n = check_ranks(getattr(args, "n", None))
        launcher = getattr(args, "launcher", None) or "local"
        if launcher not in LAUNCHERS:
            raise UsageError(
                tr(
                    "unknown launcher {launcher}: use one of {names}",
                    launcher=repr(launcher),
                    names=", ".join(LAUNCHERS),
                )
            )
        given: dict[str, Any] = {
            "init": not getattr(args, "no_init", False),
            "launcher": launcher,
            "master_addr": getattr(args, "master_addr", None) or "",
        }
        if n:
            given["distributed_ranks"] = n
        if getattr(args, "backend", None):
            given["distributed_backend"] = args.backend
        return options_for(PoolOptions, self.magics, **given)

    def _start(self, options: PoolOptions) -> None:
        from torchmagic.distributed.pool import check_backend

        check_backend(options.distributed_backend, options.distributed_ranks, options.launcher)  # before any process
        with Progress(self.shell, delay=0.0) as progress:
            self.pool.start(options, progress.update)

    # -- %distributed COMMAND ---------------------------------------------------------
    def line(self, command: str, args: Any, emit: Callable[[Any], None]) -> None:
        if command not in COMMANDS:
            magic = "%distributed " + command
            raise UsageError(tr("{magic}: expected one of {names}", magic=magic, names=", ".join(COMMANDS)))
        if command == "start":
            self._start(self.pool_options(args))
        elif command == "stop":
            self.pool.stop()
            emit(self.pool.status())
            return
        elif command == "restart":
            old = self.pool.options
            if old is None:
                raise UsageError(tr("no pool to restart: {command}", command="%distributed start -n N"))
            options = self.pool_options(args)
            if args.n is None:  # what was not given stays as it was
                options.distributed_ranks = old.distributed_ranks
            if not args.backend:
                options.distributed_backend = old.distributed_backend
            if not args.launcher:
                options.launcher = old.launcher
            self.pool.stop()
            self._start(options)
        emit(self.pool.status())

    # -- %%distributed ------------------------------------------------------------------
    def cell(self, cell: str, header: str, args: Any, emit: Callable[[Any], None]) -> None:
        __tracebackhide__ = True
        from torchmagic.distributed.session import DistributedCellError, failure_line, run_on_ranks

        n = check_ranks(args.n)
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError(tr("{flag} must be positive seconds, not {value}", flag="--timeout", value=args.timeout))
        if not self.pool.running:
            if args.no_start:
                raise UsageError(
                    tr(
                        "no rank pool is running ({flag}): {command} first",
                        flag="--no-start",
                        command="%distributed start -n N",
                    )
                )
            self._start(self.pool_options(args))
        elif n and n != self.pool.world:
            raise UsageError(
                tr(
                    "the pool has {world} ranks, not {n}: {restart} (or {stop}, then {cell})",
                    world=self.pool.world,
                    n=n,
                    restart="%distributed restart -n " + str(n),
                    stop="%distributed stop",
                    cell="%%distributed -n " + str(n),
                )
            )
        dead = self.pool.find_dead()
        if dead:
            which = ", ".join(map(str, sorted(dead)))
            raise UsageError(
                trn(
                    "rank {ranks} of the pool died: {command}",
                    "ranks {ranks} of the pool died: {command}",
                    len(dead),
                    ranks=which,
                    command="%distributed restart",
                )
            )
        # the ranks write their notes and explanations in the notebook's language, whatever their own locale
        given: dict[str, Any] = {"trace": args.trace, "language": language()}
        if args.timeout is not None:
            given["distributed_timeout"] = float(args.timeout)
        options = options_for(RunOptions, self.magics, **given)
        with Progress(self.shell, delay=1.0) as progress:
            report, interrupted = run_on_ranks(self.pool, self.shell, cell, header, options, progress.update)
        emit(report)
        if interrupted:
            raise KeyboardInterrupt
        if report.failed:
            raise DistributedCellError(failure_line(report))

    def stop(self) -> None:
        self.pool.stop()
