"""Loss terms declared as one table per stage.

A stage lists its terms as :class:`Term` rows: a name, the loss-config field holding its
weight, what it needs (teachers, features, ...) and the function computing it. Everything
else derives from the table: a term is on when its weight is > 0, the stage builds what the
*active* terms need (:func:`needs`), and the loss is the weighted sum of the active terms in
table order (:func:`weighted_sum`). A new term is a function, a row and a config field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

import torch

from ..train.config import ConfigError

C = TypeVar("C")


def _no_needs(loss_cfg: Any) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class Term(Generic[C]):
    """One weighted loss term of a stage."""

    #: Key of the term's value in the step's logs.
    name: str
    #: Field of the stage's loss config holding the weight (0: the term is off).
    weight: str
    #: The term on a step's context; None when what it needs is missing this step (then skipped).
    fn: Callable[[C], torch.Tensor | None]
    #: What the term needs when on, given the loss config (e.g. {"teacher_outputs"}).
    needs: Callable[[Any], frozenset[str]] = _no_needs
    #: The family the term belongs to (e.g. stage 1's "transfer" or "contrast": ablation rows
    #: switch whole families off).
    group: str = ""


def active(table: Sequence[Term[Any]], loss_cfg: Any) -> list[Term[Any]]:
    """The rows whose weight is > 0, in table order."""
    return [t for t in table if getattr(loss_cfg, t.weight) > 0]


def needs(table: Sequence[Term[Any]], loss_cfg: Any) -> frozenset[str]:
    """Everything the active terms need."""
    out: frozenset[str] = frozenset()
    for t in active(table, loss_cfg):
        out |= t.needs(loss_cfg)
    return out


def needing(table: Sequence[Term[Any]], what: str, loss_cfg: Any) -> list[str]:
    """Weight fields of the rows that need ``what`` (for messages: "set these to 0")."""
    return [t.weight for t in table if what in t.needs(loss_cfg)]


def weights_of(table: Sequence[Term[Any]], *groups: str) -> list[str]:
    """Weight fields of the rows in any of ``groups``."""
    return [t.weight for t in table if t.group in groups]


def check_weights(table: Sequence[Term[Any]], loss_cfg: Any, where: str) -> None:
    """Every weight of the table is a number >= 0."""
    for t in table:
        if getattr(loss_cfg, t.weight) < 0:
            raise ConfigError(f"{where}.{t.weight}: must be >= 0")


def weighted_sum(table: Sequence[Term[Any]], loss_cfg: Any, ctx: Any, zero: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The active terms on ``ctx`` (those that return a value) and ``zero`` + their weighted sum,
    added in table order."""
    values: dict[str, torch.Tensor] = {}
    weights: dict[str, float] = {}
    for t in active(table, loss_cfg):
        v = t.fn(ctx)
        if v is not None:
            values[t.name] = v
            weights[t.name] = getattr(loss_cfg, t.weight)
    return sum((weights[n] * v for n, v in values.items()), zero), values
