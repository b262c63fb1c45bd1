"""The learning curve: accuracy against the number of labels, each point drawn as often as its
95% intervals need.

    from zspace.fewshot.curve import CurveConfig, run_curve
    summary = run_curve(CurveConfig(curve_study("runs/ae")), out="runs/curve")

At each label count each cell's draws come in batches: `study.draws` first, then as many more
as its interval asks for (a half-width shrinks as 1/sqrt(draws)), until its 95% half-width is
at most the target or `max_draws` is reached. Draw r of a count is always draw
number r of zspace.fewshot.draws (same seed), and its heads start from the same weights, so more
draws extend a point's draws and never replace them.

Counts that are multiples of 10 get balanced draws (count/10 per class), other counts uniform
draws. Balanced draws remove the class-imbalance part of the draw-to-draw spread, so a point
reaches its target with fewer draws, and they are how semi-supervised results are usually
reported (5 labels per class, say).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from zspace.errors import ZspaceError
from zspace.fewshot.context import StudyContext
from zspace.fewshot.draws import draw_labelled
from zspace.fewshot.heads import parse_heads
from zspace.fewshot.report import ENCODER, FEWSHOT_OUTPUT, interval_text, write_curve_outputs
from zspace.fewshot.stats import MIN_DRAWS, accuracy_ci95, half_width
from zspace.fewshot.study import StudyConfig, load_context, study_cells, summarise
from zspace.runs import claim_folder

DEFAULT_LABELS = (10, 20, 50, 100, 200, 500, 1000)
CURVE_HEAD = "(sigmoid,64)->(softmax,10)"  # the reference study's best head on codes
FIRST_DRAWS = 10


def curve_study(ae_run: str, **settings) -> StudyConfig:
    """The study settings a curve runs by default: the encoder with CURVE_HEAD, FIRST_DRAWS
    draws in the first batch; `settings` override any StudyConfig field."""
    defaults = {"heads": [CURVE_HEAD], "pipelines": [ENCODER], "draws": FIRST_DRAWS}
    return StudyConfig(ae_run=ae_run, **{**defaults, **settings})


@dataclass
class CurveConfig:
    """A learning curve over the cells of `study` (its pipelines x heads, and its methods);
    `study.draws` is the first batch of draws at every label count."""

    study: StudyConfig
    labels: list[int] = field(default_factory=lambda: list(DEFAULT_LABELS))
    target_halfwidth_points: float = 0.5  # percentage points
    max_draws: int = 100

    def validate(self) -> None:
        self.study.validate()
        if self.study.per_class:
            raise ZspaceError(
                "a learning curve chooses its own draws per label count; drop per_class"
            )
        if not self.labels or any(n < 1 for n in self.labels):
            raise ZspaceError("the curve's label counts must be at least 1")
        if not self.target_halfwidth_points > 0:
            raise ZspaceError(
                f"--target-halfwidth must be positive, got {self.target_halfwidth_points}"
            )
        if self.max_draws < MIN_DRAWS:
            raise ZspaceError(
                f"--max-draws must be at least {MIN_DRAWS} (an interval needs {MIN_DRAWS} draws)"
            )
        if self.study.draws > self.max_draws:
            raise ZspaceError(
                f"--draws {self.study.draws} is more than --max-draws {self.max_draws}"
            )
        if not self.study.pipelines and not self.study.methods:
            raise ZspaceError("the curve has nothing to measure: give heads or --methods")

    def to_dict(self) -> dict:
        return asdict(self)


def draw_rule(count: int) -> dict:
    """draw_labelled's arguments for `count` labels: balanced for multiples of 10."""
    return {"per_class": count // 10} if count % 10 == 0 else {"count": count}


def draw_rule_text(count: int) -> str:
    rule = draw_rule(count)
    return f"{rule['per_class']} per class" if "per_class" in rule else "random"


def curve_draws(labels: torch.Tensor, count: int, first: int, stop: int, seed: int):
    """(stop - first, count) indices: draws number first..stop-1 of `count` labels."""
    rule = draw_rule(count)
    return torch.stack(
        [draw_labelled(labels, **rule, seed=seed, draw=r) for r in range(first, stop)]
    )


def next_total(done: int, half_widths: list, target: float, max_draws: int, batch: int) -> int:
    """How many draws a point should have after `done`: the widest half-width w shrinks to
    about `target` at done * (w / target)^2 draws; at least half a batch more, at most
    `max_draws`. (A None half-width, below MIN_DRAWS draws, asks for MIN_DRAWS.)"""
    if any(w is None for w in half_widths):
        needed = MIN_DRAWS
    else:
        needed = math.ceil(done * (max(half_widths) / target) ** 2)
    return min(max_draws, max(done + max(1, batch // 2), needed))


def _adaptive_point(cell, count: int, context, config: CurveConfig, timings: dict, log) -> dict:
    """One cell at one label count, drawn in batches until its half-width reaches the target
    (or max_draws). Each cell stops on its own: a method with a small spread is not redrawn for
    the sake of one with a large spread, and every cell's draws are the first ones of the
    count, so cells stay paired draw by draw on their common draws."""
    study, target = config.study, config.target_halfwidth_points / 100
    measured: list[float] = []
    done, total = 0, study.draws
    while True:
        draws = curve_draws(context.train_labels, count, done, total, study.seed)
        tick = time.perf_counter()
        measured += cell.measure(draws, done)
        timings[cell.timing_key] = timings.get(cell.timing_key, 0.0) + time.perf_counter() - tick
        done = total
        width = half_width(accuracy_ci95(measured))
        if (width is not None and width <= target) or done >= config.max_draws:
            break
        total = next_total(done, [width], target, config.max_draws, study.draws)
        shown = "n/a" if width is None else f"{100 * width:.2f}"
        log(
            f"{count:>5} labels  {cell.method}: {done} draws, half-width {shown} points; now {total}"
        )
    point = summarise(cell.method, cell.head, count, measured)
    point.update(
        draw_rule=draw_rule_text(count),
        draws=done,
        half_width=width,
        target_reached=width is not None and width <= target,
    )
    return point


def run_curve(
    config: CurveConfig,
    out: str | Path | None = None,
    progress: bool = False,
    log=print,
    context: StudyContext | None = None,
) -> dict:
    """Measure every cell at every label count with adaptive draws.

    Returns the summary written to fewshot.json: {"config", "curve", "timings",
    "evaluated_on", "evaluation_images"}; "curve" holds one point per (cell, label count):
    the study's result keys plus "draw_rule", "draws", "half_width" (a fraction, None below 3
    draws) and "target_reached". With `out`, also writes table.md, fewshot.csv and
    learning_curve.png there."""
    config.validate()
    study = config.study
    parse_heads(study.heads)  # a bad head spec is refused before any work
    if out is not None:
        claim_folder(out, FEWSHOT_OUTPUT)
    started = time.perf_counter()
    context = context if context is not None else load_context(study, progress)
    timings: dict[str, float] = {"load": time.perf_counter() - started}
    cells = study_cells(study, context)
    points = []
    for count in config.labels:
        for cell in cells:
            point = _adaptive_point(cell, count, context, config, timings, log)
            points.append(point)
            log(
                f"{count:>5} labels  {cell.method:<20} {cell.head:<28} {point['mean']:.4f} "
                f"{interval_text(point['ci95'], scale=1, digits=4)}  {point['draws']} draws"
            )
    timings["total"] = time.perf_counter() - started
    timings.update({f"prepare:{k}": v for k, v in context.timings.items()})
    summary = {
        "config": config.to_dict(),
        "curve": points,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "evaluated_on": study.evaluated_on,
        "evaluation_images": len(context.test_labels),
    }
    if out is not None:
        write_curve_outputs(Path(out), summary)
    return summary
