"""Sampling: the Sampler protocol, GAN samplers, inversion, interpolation, latent codes."""
