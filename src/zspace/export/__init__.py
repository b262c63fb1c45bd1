"""Exporting runs for use outside Python: `zspace export RUN --format onnx --out DIR`.

    from zspace.export import export_run
    manifest = export_run("runs/study/cgan-default", "export/cgan")   # sampler.onnx + export.json

An autoencoder run gives encoder.onnx and decoder.onnx, a latent-gan or pixel-gan run
sampler.onnx (noise and label in, images out; the noise is an input, never drawn inside), a
classifier run classifier.onnx. export.json names every graph's inputs and outputs with their
shapes, dtypes and value ranges, which exporter wrote it, and how closely ONNX Runtime matched
PyTorch when it was written. Needs the `export` extra (onnx, onnxruntime, onnxscript).
"""

from zspace.export.onnx_export import FORMATS, export_run

__all__ = ["FORMATS", "export_run"]
