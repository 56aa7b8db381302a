"""One module per scenario kind (the ``driver`` of a scenario file): ``MODES``, ``Params``,
``async run(ctx, params)`` and ``explain(run) -> list[str]``; see ``ferrymq.lab.context``."""
