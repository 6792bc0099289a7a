"""What the services relay from the engine to a client: the engine's side of the UI's contract.

The UI itself uses only :class:`pocketci_tui.contract.CoreClient`; the in-process services
implement that contract with the engine through :class:`EngineClient`. The real
:class:`~pocketci_tui.engine.dispatch.dispatcher.Engine` is checked against it (mypy, in that
module) and so is the UI's scripted test engine. The reads here are synchronous because they are
in-process: the services turn them into notices (counts, problems) and an async tail that says
where it ends (``tail`` and ``tail_end`` taken in one go).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pocketci_tui.engine.dispatch.approval import HeadSecrets
    from pocketci_tui.model import MatchResult, Notice
    from pocketci_tui.problems import Problem


class EngineClient(Protocol):
    """The engine as the services relay it to a client: notices, actions and reads."""

    def subscribe(self, callback: Callable[[Notice], None]) -> Callable[[], None]:
        """Call ``callback`` with every notice; return a function that unsubscribes."""
        ...

    async def fire(self, event_id: int) -> None:
        """Dispatch a stored event again."""
        ...

    async def rerun(self, run_id: str) -> None:
        """Run one function of an event again, as a new run linked to ``run_id``."""
        ...

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; False when it was not active."""
        ...

    async def cancel_event(self, event_id: int) -> int:
        """Cancel every active run of an event; return how many."""
        ...

    async def approve(self, event_id: int, sha: str | None = None) -> None:
        """Approve a waiting fork pull request at its head commit (``sha``, if given, must
        still be it)."""
        ...

    async def head_secrets(self, event_id: int) -> HeadSecrets:
        """The secrets a waiting fork pull request's head commit would get, and those refused."""
        ...

    async def preview(self, event_id: int) -> MatchResult | None:
        """What firing the stored event again would match, without running anything."""
        ...

    def tail(self, run_id: str) -> list[str]:
        """The last lines of output of a running or recently finished run."""
        ...

    def tail_times(self, run_id: str) -> list[float]:
        """When each line :meth:`tail` returns arrived, in seconds since the epoch."""
        ...

    def tail_end(self, run_id: str) -> int | None:
        """How many output lines the run published so far (the position right after the last
        line :meth:`tail` returns), or None when unknown."""
        ...

    def counts(self) -> tuple[int, int]:
        """How many runs are (queued, running)."""
        ...

    def engine_loads(self) -> tuple[tuple[str, int, int, bool], ...]:
        """Each configured engine's (name, busy slots, capacity, up), in configuration order;
        empty without ``dagger.engines``. :meth:`watch_state` tells when they change."""
        ...

    def problems(self) -> list[Problem]:
        """What the user should know is wrong."""
        ...

    def watch_state(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (no argument, in the middle of the engine's work: only note or
        schedule) whenever :meth:`counts` or :meth:`problems` may have changed without a
        notice saying so; return a function that stops the calls. With the notices, it tells
        every change, so nobody has to ask on a timer."""
        ...
