"""The report's translation section: the method x class pair x measure table, the example
figures, each measure against class similarity, and the verdict on each of the reference
study's hypotheses."""

from __future__ import annotations

from zspace.pipeline.document import Document


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}"


def _percent(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def translation_section(doc: Document, summary: dict) -> None:
    doc.heading("Class-to-class translation")
    doc.text(
        "The reference study's three translators of a digit of class A into class B, built in "
        "the autoencoder's latent space: `regular` (a GAN from codes of A against real codes of "
        "B), `cycle` (two GANs and a cycle loss A -> B -> A) and `paired` (a conditional critic "
        "that judges (input, output) pairs, pix2pix-like), beside `restyle` (invert the "
        "conditional GAN, redraw with label B) and the `shift` baseline (add the difference of "
        "the class means). `(all)` rows are one model for every ordered pair, conditioned on "
        "the target class; `(pair)` rows are one model per pair."
    )
    if summary.get("pair_source"):
        doc.text(f"Pairs of the paired method: {summary['pair_source']}; tested on real digits.")
    doc.text(
        "Class pairs ranked by similarity, the Fréchet distance between the two classes' "
        "training codes (smaller is more alike): "
        + ", ".join(
            f"{p['pair'][0]}-{p['pair'][1]} ({p['code_fd']:.1f}, {p['group']})"
            for p in summary["pairs"]
        )
        + "."
    )
    rows = summary["rows"]
    doc.table(
        [
            "method",
            "pair",
            "group",
            "accuracy",
            "FD",
            "FD / recon FD",
            "FD / sampler FD",
            "style kept",
            "cycle error",
            "train s",
        ],
        [
            [
                f"{r['method']} ({r['scope']})",
                f"{r['source']} -> {r['target']}",
                r["group"],
                _percent(r["accuracy"]),
                _number(r["fd"]),
                _number(r["fd_ratio"], 2),
                _number(r.get("fd_sampler_ratio"), 2),
                _number(r["style_kept"]),
                _number(r["cycle_error"], 4),
                _number(r.get("train_seconds"), 1),
            ]
            for r in rows
        ],
    )
    doc.text(
        "Accuracy: the evaluation classifier's verdict on the translated test digit is B. FD: "
        "Fréchet distance of the translations to real test digits of B in the classifier's "
        "feature space, and its ratio to the same distance for the test reconstructions of B "
        "(the test digits themselves, decoded) and for the reconstructions of as many training "
        "digits of B (other writers: a perfect code sampler). "
        "Style kept: the mean correlation, over the test digits, of each style measure "
        "(slant, stroke width, ink mass, bounding box, centre of mass) between input and "
        "translation; the inputs' own reconstructions keep "
        + _number(_mean_ceiling(rows))
        + ". Cycle error: pixel MSE of A -> B -> A against the input's reconstruction."
    )
    validation = summary.get("style_validation")
    if validation:
        names = list(validation["class_dependence"])
        doc.text(
            "The style measures, checked on the test digits of every class: the share of each "
            "measure's variance that the class explains (0: free of the class), and its "
            "correlation between the digits and their own reconstructions (what survives the "
            "autoencoder)."
        )
        doc.table(
            ["", *names],
            [
                ["class explains", *(_number(validation["class_dependence"][n]) for n in names)],
                [
                    "kept by reconstruction",
                    *(_number(validation["reconstruction_correlation"][n]) for n in names),
                ],
            ],
        )
    for pair, entry in summary["figures"]["examples"].items():
        doc.image(
            entry["path"],
            f"{pair.replace('-', ' -> ')}: rows are " + ", ".join(entry["rows"]) + ".",
        )
    for measure, path in summary["figures"]["measures"].items():
        doc.image(path, f"{measure} against class similarity, one line per method and scope.")
    doc.heading("The study's hypotheses", level=3)
    doc.table(
        ["hypothesis", "verdict", "evidence"],
        [[h["statement"], h["verdict"], h["evidence"]] for h in summary["hypotheses"]],
    )
    scopes = summary.get("scopes") or []
    if scopes:
        doc.text(
            "Scope: "
            + "; ".join(
                f"{s['method']}: {'one model for all pairs' if s['winner'] == 'all' else 'one model per pair'} "
                f"wins (accuracy {_percent(s['means']['all']['accuracy'])} vs "
                f"{_percent(s['means']['pair']['accuracy'])}, style kept "
                f"{_number(s['means']['all']['style_kept'])} vs "
                f"{_number(s['means']['pair']['style_kept'])})"
                for s in scopes
            )
            + "."
        )
    best = summary.get("best_learned")
    if best:
        doc.text(
            f"Best learned translator: {best['method']} ({best['scope']}), accuracy "
            f"{_percent(best['accuracy'])}, FD ratio {_number(best['fd_ratio'], 2)}, style kept "
            f"{_number(best['style_kept'])} over {best['pairs']} pairs."
        )


def _mean_ceiling(rows: list[dict]) -> float | None:
    values = [r["style_ceiling"] for r in rows if r.get("style_ceiling") is not None]
    return sum(values) / len(values) if values else None
