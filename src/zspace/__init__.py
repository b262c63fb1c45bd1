"""zspace: learning in the latent space of an autoencoder."""

__version__ = "0.1.0"


def load(run_dir, device="cpu"):
    """Load a run folder by its kind (autoencoder, latent-gan, pixel-gan, classifier, ...).

    Imported lazily so that `import zspace` stays light; see `zspace.generation.load`.
    """
    from zspace.generation import load as load_run

    return load_run(run_dir, device)
