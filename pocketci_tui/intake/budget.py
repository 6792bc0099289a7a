"""A budget of unverified body bytes held at once, across every connection.

A body can only be checked against its signature once it has arrived whole, and it has to be
kept until then (a good signature means it is stored). Without a bound, anyone who can reach
the port holds the server's memory: 32 connections sending 24 MiB each cost 800 MiB. Each body
takes its bytes from one :class:`ByteBudget` as they arrive (or all at once when a
``Content-Length`` declares them) and gives them back when it is verified, refused or dropped;
a body that does not fit is refused with 503 at once.

Part of the budget is kept for small bodies (nearly every real delivery), so a flood of large
bodies can never starve them: a body larger than ``small_body`` may only fill the budget up to
``total - small_reserve``.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """The sizes of a :class:`ByteBudget`.

    Attributes:
        total: The most unverified bytes held at once, across every connection.
        small_reserve: The part of ``total`` only small bodies may use.
        small_body: The largest body that counts as small.
    """

    total: int = 48 * MIB
    small_reserve: int = 16 * MIB
    small_body: int = 1 * MIB


class ByteBudget:
    """Counts the unverified body bytes held; see the module docstring.

    Args:
        limits: The sizes.
    """

    def __init__(self, limits: BudgetLimits | None = None) -> None:
        self.limits = limits or BudgetLimits()
        self.held = 0
        """Bytes taken and not yet given back."""
        self.peak = 0
        """The most bytes ever held at once."""
        self.refused = 0
        """How many times a take was refused."""

    def take(self, size: int, amount: int) -> bool:
        """Take ``amount`` more bytes for a body that has ``size`` bytes so far (or declared).

        Args:
            size: The body's size once these bytes are counted (decides small or large).
            amount: The bytes to take now.

        Returns:
            False, taking nothing, when they do not fit.
        """
        limits = self.limits
        ceiling = limits.total if size <= limits.small_body else limits.total - limits.small_reserve
        if self.held + amount > ceiling:
            self.refused += 1
            return False
        self.held += amount
        self.peak = max(self.peak, self.held)
        return True

    def give(self, amount: int) -> None:
        """Give back bytes taken earlier."""
        self.held = max(0, self.held - amount)


class BodyHold:
    """The bytes one body has taken from a :class:`ByteBudget`; release it when done.

    Args:
        budget: The shared budget.
    """

    __slots__ = ("_budget", "taken")

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self.taken = 0

    def grow(self, size: int) -> bool:
        """Make sure ``size`` bytes are held for this body; False when the budget is full."""
        more = size - self.taken
        if more <= 0:
            return True
        if not self._budget.take(size, more):
            return False
        self.taken = size
        return True

    def release(self) -> None:
        """Give every byte back (idempotent)."""
        if self.taken:
            self._budget.give(self.taken)
            self.taken = 0
