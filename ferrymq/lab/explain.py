"""The report's "what happened" paragraph: the sentences every scenario gets (the books, the faults
and the recoveries), and small formatting helpers the drivers' own sentences share. Everything is
computed from the run's JSON, so the paragraph can be regenerated from a saved report and checked
against its numbers."""

from __future__ import annotations

from typing import Any


def n(v: float | int | None, digits: int = 3) -> str:
    """A number as a sentence shows it: thousands separated, a few significant digits."""
    if v is None:
        return "n/a"
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"


def pct(part: float, whole: float) -> str:
    return "0 %" if not whole else f"{100.0 * part / whole:.3g} %"


def plural(count: float | int, one: str, many: str) -> str:
    return f"{n(count)} {one if count == 1 else many}"


def books(s: dict[str, Any]) -> str:
    b, t = s["books"], s["totals"]
    lost = b["lost"] - t["dropped"]  # dropped by a queue's overflow policy (drop-head): by design
    verdict = "none lost" if lost == 0 else f"{n(lost)} LOST"
    if t["dropped"]:
        verdict += f" beyond the {n(t['dropped'])} dropped by the queue's overflow policy"
    return (f"{s['name']}: {n(b['confirmed'])} messages confirmed, {verdict}; "
            f"{plural(b['duplicates'], 'duplicate receipt', 'duplicate receipts')}, "
            f"{plural(t['redelivered'], 'redelivery', 'redeliveries')}"
            + (f", {n(t['dead_lettered'])} dead-lettered" if t["dead_lettered"] else "")
            + (f"; {n(t['drained'])} were still queued when the run ended and were drained after it"
               if t.get("drained") else "") + ".")


def recoveries(s: dict[str, Any]) -> list[str]:
    out = []
    for f in s["faults"]:
        r = f["recover_s"]
        out.append(f"{s['name']}: after {f['label']} at {n(f['t'])} s, receipts were back to half the "
                   f"earlier rate {n(r)} s after the fault ended." if r is not None else
                   f"{s['name']}: after {f['label']} at {n(f['t'])} s the receipt rate did not return to "
                   "half its earlier rate before the run ended.")
    return out


def common(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        out.append(books(s))
        out += recoveries(s)
    return out
