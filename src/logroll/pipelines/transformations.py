"""Named transformations: seed 002's `--transformation_type`, mapped onto pipeline outputs.

A transformation is one or more outputs of a pipeline. Every output is a transformation under
its own name; the names seed 002's users already type are kept as aliases.
"""

from __future__ import annotations

import dataclasses

from ..errors import UsageError
from ..registry import did_you_mean
from . import Pipeline, get_pipeline

# alias -> (pipeline, outputs it makes)
ALIASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "aggregate_impressions": ("impressions", ("daily_agg",)),
}


def available(pipeline: Pipeline) -> list[str]:
    """Every transformation name that selects outputs of `pipeline`."""
    names = {o.name for o in pipeline.outputs}
    names |= {alias for alias, (p, _) in ALIASES.items() if p == pipeline.name}
    return sorted(names)


def select(pipeline: str | Pipeline, transformation: str) -> Pipeline:
    """`pipeline` restricted to the outputs `transformation` names.

    Choosing every output returns the pipeline unchanged, so its days keep their fingerprints
    and `logroll run` and this command share state without rebuilding each other's days.
    """
    pipe = pipeline if isinstance(pipeline, Pipeline) else get_pipeline(pipeline)
    outputs = {o.name: o for o in pipe.outputs}
    if transformation in outputs:
        wanted: tuple[str, ...] = (transformation,)
    elif transformation in ALIASES and ALIASES[transformation][0] == pipe.name:
        wanted = ALIASES[transformation][1]
    else:
        names = available(pipe)
        hint = did_you_mean(transformation, names)
        raise UsageError(
            f"unknown --transformation_type {transformation!r} for {pipe.name}: {hint}"
            f"choose one of {', '.join(names)}"
        )
    if set(wanted) == set(outputs):
        return pipe
    return dataclasses.replace(pipe, outputs=tuple(o for o in pipe.outputs if o.name in wanted))
