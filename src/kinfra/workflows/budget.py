"""The machine's memory budget for stacks, and the queue of starts waiting for it.

Each profile says what a slot of it is expected to use (``[profiles] memory``).
A start is admitted when the slots running on the machine (every project's,
as Docker reports them), plus the starts admitted and not up yet, plus the
new one fit ``[sandbox] memory_budget`` (default: a share of the RAM).

``admit`` is a pre-check: `kinfra impl` and `kinfra sandbox up` call it
before any claim or worktree exists. Without ``wait`` a start that does not
fit is refused (``OverBudgetError``, exit 5). With ``wait`` it takes a ticket
in the registry's queue and is served first come, first served across every
terminal and project; a waiter whose process died is dropped, and Ctrl-C
takes the ticket out. An admitted start holds its ticket in ``starting``
until ``Admission.release``, so two starts can never both count on the same
free memory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from kinfra.adapters import compose
from kinfra.adapters.registry import Registry, RegistryStore, SlotStatus, Ticket, utc_now
from kinfra.domain.config import Config, Profile
from kinfra.domain.memory import DEFAULT_BUDGET_SHARE, format_size
from kinfra.domain.slot import LOCAL_PROD_SLOT
from kinfra.errors import ComposeError, DockerUnavailableError, OverBudgetError
from kinfra.interrupts import deferred_interrupts
from kinfra.project import Project, slot_of
from kinfra.workflows.machine import load_projects

POLL_SECONDS = 1.0


def budget_of(config: Config) -> int | None:
    """The budget in megabytes; None when none is set and the RAM is unknown."""
    if config.sandbox.memory_budget_mb is not None:
        return config.sandbox.memory_budget_mb
    from kinfra.adapters.system import total_memory_mb

    total = total_memory_mb()
    return int(total * DEFAULT_BUDGET_SHARE) if total else None


def slot_memory(config: Config, slot_id: int) -> int:
    """What a slot is expected to use: its profile's ``memory``."""
    profile = Profile.LIGHT if slot_id == LOCAL_PROD_SLOT else config.sandbox.profile_of(slot_id)
    return config.profiles[profile].memory_mb


@dataclass(frozen=True)
class RunningSlot:
    """A stack Docker reports running, with the memory its profile expects it to use."""

    project: str
    slot_id: int
    compose_project: str
    memory_mb: int

    @property
    def label(self) -> str:
        slot = "local-prod" if self.slot_id == LOCAL_PROD_SLOT else f"slot {self.slot_id}"
        return f"{self.project} {slot}"


@dataclass(frozen=True)
class Usage:
    """The machine's memory budget and what takes it: running stacks, admitted and queued starts."""

    budget_mb: int
    running: tuple[RunningSlot, ...]
    starting: tuple[Ticket, ...]
    waiting: tuple[Ticket, ...]

    @property
    def used_mb(self) -> int:
        return sum(s.memory_mb for s in self.running) + sum(t.memory_mb for t in self.starting)

    @property
    def free_mb(self) -> int:
        return self.budget_mb - self.used_mb

    def holders(self) -> str:
        """Who takes the memory, for messages: 'shop slot 1 (1.5 GB), impl x (starting, 1.5 GB)'."""
        parts = [f"{s.label} ({format_size(s.memory_mb)})" for s in self.running]
        parts += [
            f"{t.label} of {t.project} (starting, {format_size(t.memory_mb)})"
            for t in self.starting
        ]
        return ", ".join(parts) or "nothing"


def live_projects() -> dict[str, str] | None:
    try:
        return compose.list_projects()
    except (DockerUnavailableError, ComposeError):
        return None


def running_slots(registry: Registry, live: dict[str, str] | None) -> list[RunningSlot]:
    """Every kinfra slot of the machine whose stack runs: as Docker says, or
    (Docker not answering) as the registry last recorded."""
    found = []
    configs = load_projects(registry).configs
    for name, record in sorted(registry.projects.items()):
        config = configs.get(name)
        if config is None:
            continue
        slot_ids = sorted(record.slots) + ([LOCAL_PROD_SLOT] if record.local_prod else [])
        for slot_id in slot_ids:
            compose_project = slot_of(config, slot_id).compose_project
            if live is not None:
                up = live.get(compose_project, "").startswith("running")
            elif slot_id == LOCAL_PROD_SLOT:
                up = (
                    record.local_prod is not None and record.local_prod.status is SlotStatus.RUNNING
                )
            else:
                up = record.slots[slot_id].status is not SlotStatus.STOPPED
            if up:
                found.append(
                    RunningSlot(name, slot_id, compose_project, slot_memory(config, slot_id))
                )
    return found


def machine_usage(registry: Registry, budget_mb: int, live: dict[str, str] | None) -> Usage:
    return Usage(
        budget_mb,
        tuple(running_slots(registry, live)),
        tuple(registry.starting),
        tuple(registry.queue),
    )


class Admission:
    """An admitted start's claim on memory, held until ``release`` (or the
    end of a ``with`` block): by then its stack runs and Docker counts it."""

    def __init__(self, store: RegistryStore, ticket: Ticket | None) -> None:
        self.store = store
        self.ticket = ticket

    def release(self) -> None:
        if self.ticket is None:
            return
        with deferred_interrupts(), self.store.transaction() as registry:
            registry.starting = [t for t in registry.starting if t.ticket != self.ticket.ticket]
        self.ticket = None

    def __enter__(self) -> Admission:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def admit(
    project: Project,
    memory_mb: int,
    label: str,
    *,
    wait: bool = False,
    say: Callable[[str], None] = lambda _: None,
    store: RegistryStore | None = None,
) -> Admission:
    """Admit a start of ``memory_mb``, queueing for it with ``wait``.

    Refused at once (``OverBudgetError``) when it can never fit, or, without
    ``wait``, when it does not fit now or others are waiting ahead of it.
    ``say`` gets a line whenever a waiter's place or reason changes.
    """
    store = store or RegistryStore()
    budget = budget_of(project.config)
    if budget is None:
        return Admission(store, None)  # no budget set and the RAM is unknown: no limit
    if memory_mb > budget:
        raise OverBudgetError(
            f"{label} needs {format_size(memory_mb)}, more than the whole memory budget "
            f"({format_size(budget)})",
            hint="raise [sandbox] memory_budget in kinfra.toml or use a lighter profile; "
            "nothing was created",
        )
    from kinfra.adapters.lock import process_start_time  # only a start needs it

    pid = os.getpid()
    ticket = Ticket(
        ticket=os.urandom(6).hex(),
        project=project.name,
        label=label,
        memory_mb=memory_mb,
        pid=pid,
        pid_start=process_start_time(pid),
        since=utc_now(),
    )
    queued = False
    said = ""
    try:
        while True:
            with store.transaction() as registry:
                # Docker is asked under the lock: an admitted start gives its
                # ticket back (under the lock) only once its stack runs, so
                # every start is seen either running or still starting.
                live = live_projects()
                _drop_dead(registry)
                usage = machine_usage(registry, budget, live)
                place = _place(registry.queue, ticket)
                ahead = registry.queue[:place]
                if not ahead and memory_mb <= usage.free_mb:
                    registry.queue = [t for t in registry.queue if t.ticket != ticket.ticket]
                    registry.starting.append(ticket)
                    return Admission(store, ticket)
                if not wait:
                    raise _refusal(label, memory_mb, usage, ahead)
                if not queued:
                    registry.queue.append(ticket)
                    queued = True
            line = _waiting_line(label, memory_mb, usage, ahead)
            if line != said:
                say(line)
                said = line
            time.sleep(POLL_SECONDS)
    except BaseException:
        if queued:
            with deferred_interrupts(), store.transaction() as registry:
                registry.queue = [t for t in registry.queue if t.ticket != ticket.ticket]
        raise


def _place(queue: list[Ticket], ticket: Ticket) -> int:
    """How many tickets are ahead of ``ticket`` (all of them when it is not queued yet)."""
    for index, queued in enumerate(queue):
        if queued.ticket == ticket.ticket:
            return index
    return len(queue)


def _drop_dead(registry: Registry) -> None:
    """Tickets whose process is gone (killed, crashed) hold nothing any more."""
    from kinfra.adapters.lock import process_alive

    def alive(ticket: Ticket) -> bool:
        return ticket.pid == os.getpid() or process_alive(ticket.pid, ticket.pid_start)

    registry.queue = [t for t in registry.queue if alive(t)]
    registry.starting = [t for t in registry.starting if alive(t)]


def _refusal(label: str, memory_mb: int, usage: Usage, ahead: list[Ticket]) -> OverBudgetError:
    if ahead:
        why = f"{len(ahead)} start(s) already wait for memory ahead of it"
    else:
        why = (
            f"{format_size(usage.used_mb)} of the {format_size(usage.budget_mb)} memory budget "
            f"is taken by {usage.holders()}"
        )
    return OverBudgetError(
        f"not enough memory for {label} ({format_size(memory_mb)}): {why}",
        hint="add --wait to queue for it, free a slot (`kinfra done NAME`, "
        "`kinfra sandbox down --slot N`), or raise [sandbox] memory_budget; nothing was created",
    )


def _waiting_line(label: str, memory_mb: int, usage: Usage, ahead: list[Ticket]) -> str:
    place = f"place {len(ahead) + 1} in the queue"
    if ahead:
        place += f", behind {', '.join(f'{t.label} of {t.project}' for t in ahead)}"
    return (
        f"waiting for memory ({place}): {label} needs {format_size(memory_mb)}, "
        f"{format_size(max(usage.free_mb, 0))} of {format_size(usage.budget_mb)} free; "
        f"in use: {usage.holders()}"
    )
