"""`ferrymq sim`: run simulation seeds; a failure prints the command that replays it."""

from __future__ import annotations

import time
from typing import Annotated

import typer


def sim(
    seed: Annotated[int | None, typer.Option(help="Run this one seed (replay a failure).")] = None,
    steps: Annotated[int, typer.Option(help="Steps per seed.")] = 2000,
    seeds: Annotated[int, typer.Option(help="How many seeds to run, from --first.")] = 1,
    first: Annotated[int, typer.Option(help="The first seed of a range.")] = 0,
    trace: Annotated[bool, typer.Option(help="Print the whole trace of each seed.")] = False,
) -> None:
    """Deterministic simulation: the real core and codecs, a seeded network, power losses."""
    from ferrymq.sim.runner import SimFailure, run_seed

    chosen = [seed] if seed is not None else list(range(first, first + seeds))
    started = time.monotonic()
    crashes = 0
    for s in chosen:
        try:
            result = run_seed(s, steps)
        except SimFailure as failure:
            typer.echo(failure.report(), err=True)
            raise typer.Exit(1) from None
        crashes += result.crashes
        done = s - chosen[0] + 1
        if len(chosen) > 1 and done % 500 == 0:
            typer.echo(f"... {done} of {len(chosen)} seeds passed ({time.monotonic() - started:.0f} s)")
        if trace:
            typer.echo("\n".join(result.trace))
        if len(chosen) == 1:
            counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
            typer.echo(f"seed {s}: ok, {result.crashes} power loss(es), trace {result.digest[:16]}; {counts}")
    typer.echo(f"{len(chosen)} seed(s) x {steps} steps passed, {crashes} power loss(es), "
               f"{time.monotonic() - started:.1f} s")


app = typer.Typer(add_completion=False)
app.command()(sim)

if __name__ == "__main__":
    app()
