"""Stages: named steps that declare what they consume and produce.

A :class:`Pipeline` checks, when it is assembled and before any data flows, that every input
a stage consumes is provided by the caller or produced by an earlier stage (Stetl's rule).
Validation stages return findings instead of raising on the first bad row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.errors import PluginError


@dataclass(frozen=True)
class Stage:
    """One step.

    Attributes
    ----------
    name : str
    consumes : tuple of str
        Names of inputs in the context (e.g. ``"parcels"``).
    produces : tuple of str
        Names it adds to the context; ``"findings"`` are collected, never overwritten.
    rules : tuple of str
        Rule ids whose findings it may return.
    run : callable
        ``run(context, params) -> dict`` of produced values.
    """

    name: str
    consumes: tuple
    produces: tuple
    run: object
    rules: tuple = field(default_factory=tuple)


class Pipeline:
    """Stages in order, checked when assembled."""

    def __init__(self, stages, provided):
        self.stages = list(stages)
        available = set(provided)
        for stage in self.stages:
            missing = [c for c in stage.consumes if c not in available]
            if missing:
                raise PluginError(
                    f"stage {stage.name!r} consumes {', '.join(missing)}, which neither the "
                    f"input ({', '.join(sorted(provided))}) nor an earlier stage produces")
            available |= set(stage.produces)

    def run(self, context, params):
        context = dict(context)
        findings = list(context.get("findings", []))
        for stage in self.stages:
            out = stage.run(context, params) or {}
            findings.extend(out.pop("findings", []))
            context.update(out)
        context["findings"] = findings
        return context
