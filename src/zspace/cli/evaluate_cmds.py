"""`zspace evaluate` (samples or a run against the test set) and `zspace fit-gmm` (the baseline)."""

from __future__ import annotations

import json
from pathlib import Path

from zspace.cli.common import add_data_arguments, non_negative_int, positive_int
from zspace.cli.flow_cmds import add_flow_sampling_arguments, flow_sampling
from zspace.files import output_file, save_json
from zspace.training.cards import EVALUATION_FILE, write_card


def register(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate", help="judge generated digits: requested-digit accuracy, FD, precision/recall"
    )
    evaluate.add_argument(
        "source", metavar="SOURCE", help="samples .npz (images, optional labels) or a run folder"
    )
    evaluate.add_argument(
        "-n", type=positive_int, default=1000, help="samples per digit from a run (default 1000)"
    )
    evaluate.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed")
    evaluate.add_argument(
        "--ae", default=None, help="autoencoder run whose test reconstructions are the ceiling"
    )
    evaluate.add_argument(
        "--no-ceiling", action="store_true", help="skip the test-reconstruction ceiling"
    )
    evaluate.add_argument(
        "--json",
        default=None,
        metavar="OUT",
        help=f"also write the figures here (RUN/{EVALUATION_FILE}: also into RUN's model card)",
    )
    add_data_arguments(evaluate)
    evaluate.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or mps")
    evaluate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    evaluate.add_argument(
        "--classifier-limit",
        type=positive_int,
        default=None,
        help="quick check: train the evaluation classifier on only N images (cached separately)",
    )
    evaluate.add_argument(
        "--classifier-epochs", type=positive_int, default=None, help="quick check: fewer epochs"
    )
    add_flow_sampling_arguments(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    fit = subparsers.add_parser(
        "fit-gmm", help="fit the class-conditional Gaussian-mixture baseline to an AE's codes"
    )
    fit.add_argument("--ae", required=True, help="autoencoder run folder")
    fit.add_argument("--out", required=True, help="run folder to create (kind gmm-baseline)")
    fit.add_argument("--components", type=positive_int, default=4, help="per digit (default 4)")
    fit.add_argument("--seed", type=non_negative_int, default=0)
    fit.add_argument("--limit", type=positive_int, default=None, help="first N training images")
    add_data_arguments(fit, dataset=False)
    fit.add_argument("--device", default="cpu")
    fit.set_defaults(run=run_fit_gmm)


def run_evaluate(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.evaluation.sources import evaluate_source, format_report

    if args.json:
        output_file(args.json, (".json",), "--json")  # before the work, not after it
    result = evaluate_source(
        args.source,
        per_digit=args.n,
        seed=args.seed,
        ae_run=args.ae,
        ceiling=not args.no_ceiling,
        dataset=args.dataset,
        data_dir=args.data_dir,
        device=args.device,
        progress=not args.no_progress,
        classifier_options={"limit": args.classifier_limit, "epochs": args.classifier_epochs},
        sampling=flow_sampling(args),
    )
    print(format_report(result))
    if args.json:
        save_json(args.json, result)
        # An evaluation written into the evaluated run (RUN/evaluation.json) joins its card.
        run = Path(args.source)
        if run.is_dir() and Path(args.json).resolve() == (run / EVALUATION_FILE).resolve():
            write_card(run)
    return 0


def run_fit_gmm(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.evaluation.gmm import fit_gmm_baseline

    baseline = fit_gmm_baseline(
        args.ae,
        args.out,
        components=args.components,
        seed=args.seed,
        data_dir=args.data_dir,
        device=args.device,
        limit=args.limit,
    )
    print(
        json.dumps(
            {
                "out": args.out,
                "components": baseline.gmm.components,
                "mean_log_likelihood": [round(v, 3) for v in baseline.gmm.log_likelihoods],
            }
        )
    )
    return 0
