"""Built-in evaluation of generated digits.

- `classifier`: a small CNN trained once on the training split and cached; it judges which digit
  an image shows and supplies the feature space for the distribution metrics.
- `metrics`: Frechet distance, k-NN precision/recall, requested-digit accuracy, class histogram,
  diversity; `evaluate_images` bundles them.
- `gmm`: the class-conditional Gaussian-mixture baseline in latent space.
- `runs`: evaluate a run folder or an `.npz` of samples (what `zspace evaluate` calls).
"""
