"""zspace: learning in the latent space of an autoencoder."""

from zspace.version import __version__

__all__ = ["__version__", "load"]


def load(run_dir, device="cpu"):
    """Load a run folder by its kind (autoencoder, latent-gan, pixel-gan, gmm-baseline,
    classifier); see `zspace.loading.load`."""
    # Imported here so that `import zspace` and `zspace --help` stay light (no torch).
    from zspace.loading import load as load_run

    return load_run(run_dir, device)
