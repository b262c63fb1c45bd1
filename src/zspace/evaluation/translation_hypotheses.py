"""The reference study's three hypotheses on class-to-class translation, judged on measured rows.

Rows are `TranslationJudge.judge` results with each pair's `group` ("similar" or
"dissimilar", from `chosen_pairs`) and `code_fd` added. A difference between the groups counts
only beyond a stated margin, so that the noise of three pairs a group is not read as an effect:
2 points of accuracy, 0.05 of style correlation, 0.25 of FD ratio, 0.002 of cycle error.
"""

from __future__ import annotations

import math

MARGINS = {"accuracy": 0.02, "style_kept": 0.05, "fd_ratio": 0.25, "cycle_error": 0.002}
# For each measure, +1 if larger is better, -1 if smaller is better.
DIRECTIONS = {"accuracy": 1, "style_kept": 1, "fd_ratio": -1, "cycle_error": -1}
COUNTERPART_CONVERGED = 0.25  # relative counterpart error below which G "finds" J


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def group_means(rows: list[dict], method: str, scope: str = "pair") -> dict:
    """{group: {measure: mean over the group's pairs}} for one method and scope."""
    chosen = [r for r in rows if r["method"] == method and r["scope"] == scope]
    return {
        group: {
            measure: _mean(r[measure] for r in chosen if r["group"] == group)
            for measure in DIRECTIONS
        }
        for group in ("similar", "dissimilar")
    }


def similarity_effects(rows: list[dict], method: str, scope: str = "pair") -> dict:
    """Per measure: similar-group mean, dissimilar-group mean, difference and which group is
    better beyond the margin ("similar", "dissimilar" or "neither")."""
    means = group_means(rows, method, scope)
    effects = {}
    for measure, direction in DIRECTIONS.items():
        similar, dissimilar = means["similar"][measure], means["dissimilar"][measure]
        if similar is None or dissimilar is None:
            continue
        gain = (similar - dissimilar) * direction
        better = "neither"
        if gain > MARGINS[measure]:
            better = "similar"
        elif gain < -MARGINS[measure]:
            better = "dissimilar"
        effects[measure] = {
            "similar": similar,
            "dissimilar": dissimilar,
            "difference": similar - dissimilar,
            "better": better,
        }
    return effects


def _evidence(effects: dict) -> str:
    return "; ".join(
        f"{measure} {e['similar']:.3f} on similar pairs vs {e['dissimilar']:.3f} on dissimilar"
        for measure, e in effects.items()
    )


def _better_on_similar(effects: dict) -> str:
    """supported / refuted / mixed for "works better the more alike the classes are"."""
    verdicts = [e["better"] for e in effects.values()]
    if verdicts.count("similar") >= 2 and "dissimilar" not in verdicts:
        return "supported"
    if "similar" not in verdicts:
        return "refuted"
    return "mixed"


def hypothesis_verdicts(rows: list[dict], counterpart_errors: list[float] | None = None) -> list:
    """The verdict on each of the study's hypotheses, with the numbers behind it."""
    verdicts = []
    regular = similarity_effects(rows, "regular")
    if regular:
        same = all(e["better"] == "neither" for e in regular.values())
        verdicts.append(
            {
                "hypothesis": "regular",
                "statement": "Regular GAN: which classes are paired makes no difference, "
                "because D never sees how an output relates to its input.",
                "verdict": "supported" if same else "refuted",
                "evidence": _evidence(regular),
                "effects": regular,
            }
        )
    cycle = similarity_effects(rows, "cycle")
    if cycle:
        verdicts.append(
            {
                "hypothesis": "cycle",
                "statement": "Cycle GAN: landing in B trades off against keeping enough of the "
                "input to come back, so it works better the more alike the classes are.",
                "verdict": _better_on_similar(cycle),
                "evidence": _evidence(cycle),
                "effects": cycle,
            }
        )
    paired = similarity_effects(rows, "paired")
    if paired:
        verdict = _better_on_similar(paired)
        evidence = _evidence(paired)
        error = _mean(counterpart_errors or [])
        if error is not None:
            converged = error <= COUNTERPART_CONVERGED
            evidence += (
                f"; relative distance to the true counterpart {error:.3f} on held-out pairs "
                f"({'converges' if converged else 'does not converge'}: threshold "
                f"{COUNTERPART_CONVERGED})"
            )
            if not converged and verdict == "supported":
                verdict = "mixed"
        verdicts.append(
            {
                "hypothesis": "paired",
                "statement": "Paired (conditional) GAN: works better for similar classes, and "
                "G converges to the true counterpart.",
                "verdict": verdict,
                "evidence": evidence,
                "effects": paired,
                "counterpart_error": error,
            }
        )
    return verdicts


def scope_winner(rows: list[dict], method: str) -> dict | None:
    """Per-pair models against one all-pairs model of `method`, on the pairs both ran: the
    scope better on at least two of accuracy, style kept and FD ratio."""
    by_scope = {}
    for scope in ("pair", "all"):
        chosen = [r for r in rows if r["method"] == method and r["scope"] == scope]
        if not chosen:
            return None
        by_scope[scope] = {
            m: _mean(r[m] for r in chosen) for m in ("accuracy", "style_kept", "fd_ratio")
        }
    wins = sum(
        (by_scope["all"][m] - by_scope["pair"][m]) * DIRECTIONS[m] > 0
        for m in ("accuracy", "style_kept", "fd_ratio")
    )
    return {"method": method, "means": by_scope, "winner": "all" if wins >= 2 else "pair"}


def best_learned(rows: list[dict]) -> dict | None:
    """The learned method and scope with the highest mean accuracy (ties: more style kept)."""
    candidates = {}
    for row in rows:
        if row["method"] in ("regular", "cycle", "paired"):
            candidates.setdefault((row["method"], row["scope"]), []).append(row)
    if not candidates:
        return None
    summaries = [
        {
            "method": method,
            "scope": scope,
            "accuracy": _mean(r["accuracy"] for r in chosen),
            "fd_ratio": _mean(r["fd_ratio"] for r in chosen),
            "style_kept": _mean(r["style_kept"] for r in chosen),
            "pairs": len(chosen),
        }
        for (method, scope), chosen in candidates.items()
    ]
    return max(summaries, key=lambda s: (s["accuracy"] or 0, s["style_kept"] or 0))
