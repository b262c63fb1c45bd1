"""`zspace cluster`: cluster the training images without labels and evaluate the clusters."""

from __future__ import annotations

from zspace.cli.common import add_data_arguments, non_negative_int, positive_int, whole_number_in


def register(subparsers) -> None:
    cluster = subparsers.add_parser(
        "cluster",
        help="cluster the training images with zero labels (spectral clustering of a kNN "
        "graph); accuracy and NMI against the digits",
    )
    cluster.add_argument(
        "--ae", required=True, metavar="RUN", help="autoencoder run (its codes: --features encoder)"
    )
    cluster.add_argument(
        "--out",
        required=True,
        help="folder for cluster.json, cluster_assignments.npz, clusters.png",
    )
    cluster.add_argument(
        "--features",
        default=None,
        help="what the graph compares: hog-pca (default; gradient histograms of deskewed "
        "images, 98%% on MNIST, far ahead of the autoencoder's codes), encoder, deskewed-pca "
        "or pixels",
    )
    cluster.add_argument(
        "--clusters", type=whole_number_in(2), default=10, help="number of clusters (default 10)"
    )
    cluster.add_argument("--seed", type=non_negative_int, default=0)
    cluster.add_argument(
        "--limit", type=positive_int, default=None, help="use only the first N training images"
    )
    cluster.add_argument(
        "--test-limit", type=positive_int, default=None, help="use only the first N test images"
    )
    cluster.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    add_data_arguments(cluster)
    cluster.set_defaults(run=run_cluster)


def run_cluster(args) -> int:
    # Imported when this command runs: the other commands and --help do not load it.
    from zspace.fewshot.cluster_report import ClusterConfig, run_clustering

    config = ClusterConfig(
        ae_run=args.ae,
        clusters=args.clusters,
        seed=args.seed,
        dataset=args.dataset,
        data_dir=args.data_dir,
        train_limit=args.limit,
        test_limit=args.test_limit,
        device=args.device,
    )
    if args.features is not None:
        config.features = args.features
    summary = run_clustering(config, args.out)
    train, test = summary["train"], summary["test"]
    print(
        f"clustered {summary['train_images']} training images ({summary['features']}) into "
        f"{summary['clusters']} clusters in {summary['seconds']:.1f} s"
    )
    print(
        f"train: accuracy {train['accuracy']:.4f}, NMI {train['nmi']:.4f}   "
        f"test: accuracy {test['accuracy']:.4f}, NMI {test['nmi']:.4f}   "
        f"(N2D: {summary['reference']['N2D']:.3f})"
    )
    print(f"wrote cluster.json, cluster_assignments.npz and clusters.png to {args.out}")
    return 0
