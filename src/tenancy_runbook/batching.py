"""Cursors of a batched update: where the next batch is, for the one batch loop of
stages/backfill.py (``_loop``), whichever the kind.

A cursor hands out tickets (``claim``), each one batch: a span of heap pages (Pages, the first
pass) or of rows by primary key (Keys on one worker, KeyRanges on several: the second pass).
The loop runs the batch and tells the cursor how it went: ``failed`` (nothing was written: its
span comes back halved, handed out before any span after it) or ``succeeded`` (True: record
it). A cursor also gives its batch statement's parameters (``params``), the span in words for
a message (``where``) and its size for the batch's record (``columns``). ``claim`` returns
None once nothing is left and no batch is in flight, or once ``stop`` was called (an error,
an abort, a kill). Thread-safe: several workers claim from one cursor.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace


@dataclass
class Ticket:
    """One batch handed to a worker: where it starts, how far it spans (pages, or rows), its
    number, its failed tries so far (``smallest``: of those, at the smallest span) and where
    its range ends (pages: the ticket's own end; keys: the range's last key, None: the table's
    end)."""
    at: object
    span: int
    number: int
    tries: int = 0
    smallest: int = 0
    end: object = None


class Cursor:
    """What every kind shares: tickets handed back (a failed try's, the rest of a range cut
    short: a heap, handed out first, lowest position first), the batches in flight, a stop.
    A kind says how a fresh batch is cut (``_fresh``, None: nothing left), how a returned one
    is handed out again (``_again``) and what a committed batch changes (``_after``)."""

    kind = ""

    def __init__(self, numbers: Iterator[int]):
        self.numbers = numbers          # the table's batch numbers (its passes share them)
        self.returned: list = []        # (position, number, ticket)
        self.busy, self.stopped = 0, False
        self._cv = threading.Condition()

    def claim(self, size: int, conn=None) -> Ticket | None:
        """The next ticket, about ``size`` long in this kind's unit (a returned one first), or
        None once nothing is left and no batch is in flight (while one is, it may still come
        back: wait). ``conn``: the claiming worker's connection, for a kind that asks."""
        with self._cv:
            while not self.stopped:
                if self.returned:
                    ticket = self._again(heapq.heappop(self.returned)[-1], size)
                else:
                    ticket = self._fresh(size, conn)
                if ticket is not None:
                    self.busy += 1
                    return ticket
                if not self.busy:
                    return None
                self._cv.wait(0.5)
            return None

    def failed(self, ticket: Ticket) -> None:
        """A failed try, counted on ``ticket`` (its record, its back-off): its batch comes back
        with half the span."""
        with self._cv:
            ticket.tries += 1
            ticket.smallest += ticket.span == 1
            self._give_back(replace(ticket, span=max(1, ticket.span // 2)))
            self.busy -= 1
            self._cv.notify_all()

    def succeeded(self, ticket: Ticket, result: dict) -> bool:
        """A batch that committed (``result``: its statement's row); True: record it."""
        with self._cv:
            self.busy -= 1
            record = self._after(ticket, result)
            self._cv.notify_all()
            return record

    def stop(self) -> None:
        """No ticket is handed out any more."""
        with self._cv:
            self.stopped = True
            self._cv.notify_all()

    def _give_back(self, ticket: Ticket) -> None:
        heapq.heappush(self.returned, (ticket.at, ticket.number, ticket))

    def _number(self) -> int:
        return next(self.numbers)

    def _fresh(self, size: int, conn) -> Ticket | None:
        raise NotImplementedError

    def _again(self, ticket: Ticket, size: int) -> Ticket:
        raise NotImplementedError

    def _after(self, ticket: Ticket, result: dict) -> bool:
        raise NotImplementedError


class Pages(Cursor):
    """The first pass: heap pages [0, ``end``) in physical order. A batch spans size / density
    pages (at most ``max_span``), density being the most rows per page (NULL or not) known:
    the table's average, a full page's in a sample of pages, and every batch of this pass so
    far. So even where every row is NULL a batch holds about ``size`` rows, however few NULLs
    the pages before had (where the rows are done, batches are quick and the size grows toward
    max_batch_size). A failed try's pages come back with half the span and are handed out
    before any page after them: one worker walks the table in physical order; several take
    disjoint page ranges."""

    kind = "pages"

    def __init__(self, end: int, numbers: Iterator[int], *densities: float, max_span: int):
        super().__init__(numbers)
        self.frontier, self.end, self.max_span = 0, end, max_span
        self.density = max(1.0, *densities)     # rows per page, never below one

    def claim(self, size: int, conn=None) -> Ticket | None:
        """The next pages for a batch of about ``size`` rows."""
        return super().claim(int(size / self.density), conn)

    def _fresh(self, want: int, conn) -> Ticket | None:
        if self.frontier >= self.end:
            return None
        span = max(1, min(self.max_span, self.end - self.frontier, want))
        self.frontier += span
        return Ticket(self.frontier - span, span, self._number(), end=self.frontier)

    def _again(self, ticket: Ticket, want: int) -> Ticket:
        """Its first pages; the rest of its range comes back as a new batch, at full span."""
        span = max(1, min(ticket.span, ticket.end - ticket.at, want))
        if ticket.at + span < ticket.end:
            self._give_back(Ticket(ticket.at + span, self.max_span, self._number(), end=ticket.end))
        return replace(ticket, span=span, end=ticket.at + span)

    def _after(self, ticket: Ticket, result: dict) -> bool:
        self.density = max(self.density, result["tuples"] / ticket.span)
        return True

    def params(self, ticket: Ticket) -> dict:
        return {"lo": f"({ticket.at},0)", "hi": f"({ticket.at + ticket.span},0)"}

    def where(self, ticket: Ticket) -> str:
        return f"page {ticket.at}" if ticket.span == 1 else f"pages {ticket.at} to {ticket.at + ticket.span - 1}"

    def columns(self, size: int, ticket: Ticket) -> dict:
        return {"size": size, "pages": ticket.span}


class Keys(Cursor):
    """The second pass on one worker: after primary key ``after``, until a batch finds no row
    still NULL. A batch is the next ``size`` rows still NULL (fewer after a failed try: half as
    many each time)."""

    kind = "keyset"

    def __init__(self, numbers: Iterator[int]):
        super().__init__(numbers)
        self.after, self.finished = "", False

    def _fresh(self, size: int, conn) -> Ticket | None:
        if self.finished:
            return None
        return Ticket(self.after, max(1, size), self._number())

    def _again(self, ticket: Ticket, size: int) -> Ticket:
        return replace(ticket, span=max(1, min(ticket.span, size)))

    def _after(self, ticket: Ticket, result: dict) -> bool:
        """False when it found nothing: the pass is over."""
        if not result["scanned"]:
            self.finished = True
            return False
        self.after = result["last_id"]
        return True

    def params(self, ticket: Ticket) -> dict:
        return {"after": ticket.at, "size": ticket.span, "upto": ticket.end}

    def where(self, ticket: Ticket) -> str:
        return f"{ticket.span} row{'s' if ticket.span > 1 else ''} after id {ticket.at!r}"

    def columns(self, size: int, ticket: Ticket) -> dict:
        return {"size": ticket.span, "pages": None}


class KeyRanges(Keys):
    """The second pass on several workers: each fresh ticket is a range of keys (after, upto]
    holding ``size`` rows still NULL when it was handed out (``bound(conn, after, size)``: the
    key of the size-th, None when fewer are left; asked on the claiming worker's connection),
    so no two workers touch the same rows. A range whose batch did not reach its end (a failed
    try's smaller retry) comes back for the rest."""

    def __init__(self, numbers: Iterator[int], bound: Callable[[object, object, int], object]):
        super().__init__(numbers)
        self.bound = bound

    def _fresh(self, size: int, conn) -> Ticket | None:
        if self.finished:
            return None
        upto = self.bound(conn, self.after, max(1, size))
        ticket = Ticket(self.after, max(1, size), self._number(), end=upto)
        self.finished, self.after = upto is None, upto or self.after
        return ticket

    def _after(self, ticket: Ticket, result: dict) -> bool:
        """The rest of its range comes back when the batch stopped short of its end."""
        if result["scanned"] and result["scanned"] >= ticket.span and result["last_id"] != ticket.end:
            self._give_back(Ticket(result["last_id"], ticket.span, self._number(), end=ticket.end))
        return bool(result["scanned"])
