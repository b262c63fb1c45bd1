"""Export a run to ONNX: `export_run(RUN, OUT)`, which `zspace export` calls.

Each graph (see `zspace.export.graphs`) is traced by `torch.export` (non-strict, else strict)
with a dynamic batch dimension ("batch"), written by `torch.onnx.export(dynamo=True)`, then run
in ONNX Runtime on test inputs, in a batch and alone, and compared with the library's own
answer. If that fails or does not match, the TorchScript-based exporter (`dynamo=False`) is
tried (it cannot write the classifier's deskewing, affine_grid, at opset 18), and export.json
records which exporter wrote each graph and why. Every zspace graph exports with the dynamo
exporter today.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from zspace.errors import RunError, ZspaceError
from zspace.export.folder import WRITTEN_BY, ExportFolder
from zspace.export.graphs import BATCH, Graph, graphs_for
from zspace.loading import load
from zspace.runs import AUTOENCODER, CLASSIFIER, LATENT_GAN, PIXEL_GAN, RunDir, run_kind
from zspace.version import __version__

FORMATS = ("onnx",)
EXPORTABLE_KINDS = (AUTOENCODER, LATENT_GAN, PIXEL_GAN, CLASSIFIER)
# 18: what the dynamo exporter writes natively; ONNX Runtime has run it since 1.14, and
# onnxruntime-web and ONNX Runtime Mobile support it.
OPSET = 18
TOLERANCE = 1e-4  # largest |ONNX Runtime - PyTorch| an export may show on its check inputs
CHECK_ROWS = 256  # inputs each graph is checked on while exporting (plus one batch of 1)
INSTALL_HINT = "pip install 'zspace[export]'"


def require_onnx():
    """The onnx and onnxruntime modules; one line that says what to install without them."""
    try:
        # Imported here: they are the optional export extra, needed by this command only.
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401 - the dynamo exporter translates with it
    except ImportError as error:
        raise ZspaceError(
            f"exporting to ONNX needs the export extra ({error.name} is missing): {INSTALL_HINT}"
        ) from None
    return onnx, onnxruntime


def onnxruntime_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session for `path` using `threads` threads."""
    _, onnxruntime = require_onnx()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_run(
    run_dir: str | Path, out: str | Path, format: str = "onnx", check_rows: int = CHECK_ROWS
) -> dict:
    """Write RUN's graphs and export.json into the folder `out`; returns export.json's content.

    autoencoder: encoder.onnx and decoder.onnx; latent-gan and pixel-gan: sampler.onnx;
    classifier: classifier.onnx. ZspaceError (one line) for an unknown format, a missing extra,
    a damaged run, a kind that cannot be exported, or an `out` holding files of someone else.
    """
    if format not in FORMATS:
        raise ZspaceError(f"unknown export format {format!r}; zspace exports {', '.join(FORMATS)}")
    onnx, onnxruntime = require_onnx()
    config = RunDir(run_dir).read_config()
    kind = run_kind(config["kind"])
    if kind.name not in EXPORTABLE_KINDS and not kind.sampler:
        raise ZspaceError(
            f"{run_dir} is a {kind.name} run ({kind.description}), which cannot be exported; "
            f"zspace export takes runs of kind {', '.join(EXPORTABLE_KINDS)}"
        )
    folder = ExportFolder(out)
    model = _load(run_dir)
    graphs = graphs_for(kind.name, model)
    files = [f"{graph.name}.onnx" for graph in graphs]
    folder.check_names(files)
    manifest = {
        "written_by": WRITTEN_BY,
        "complete": True,
        "zspace_version": __version__,
        "format": format,
        "opset": OPSET,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": {
            "path": str(Path(run_dir).resolve()),
            "kind": kind.name,
            "zspace_version": config.get("zspace_version"),
            "conditional": bool(getattr(model, "conditional", False)),
        },
        "versions": {
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "files": files,
        "graphs": {},
    }
    with folder.staging() as stage:
        for graph, name in zip(graphs, files):
            record = export_graph(graph, stage / name, check_rows)
            manifest["graphs"][graph.name] = {"file": name, **describe(graph), **record}
        folder.commit(stage, files, manifest)
    return manifest


def _load(run_dir):
    """The run's model on CPU; a run whose config or weights are broken is one RunError."""
    try:
        return load(run_dir, "cpu")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise RunError(
            f"{run_dir} looks damaged: its config.json or weights do not describe a model "
            f"({type(error).__name__}: {error})"
        ) from error


def describe(graph: Graph) -> dict:
    """export.json's description of one graph's interface."""
    return {
        "computes": graph.computes,
        "inputs": [spec.to_dict() for spec in graph.inputs],
        "outputs": [spec.to_dict() for spec in graph.outputs],
        **graph.notes,
    }


def export_graph(graph: Graph, path: Path, check_rows: int = CHECK_ROWS) -> dict:
    """Export one graph to `path`, dynamo exporter first, and check it in ONNX Runtime.

    Returns export.json's record of how it was written: the exporter, why the dynamo exporter
    was not used (if it was not), the check's size and error, and the file's hash."""
    require_onnx()
    examples = graph.examples(2, seed=1)  # 2, not 1: a batch of one would be taken as fixed
    failures = []
    for exporter, write in (("dynamo", _export_dynamo), ("torchscript", _export_torchscript)):
        path.unlink(missing_ok=True)
        try:
            with _quiet():
                details = write(graph, examples, path)
            error = check_graph(graph, path, check_rows)
        except Exception as problem:  # noqa: BLE001 - any failure: try the next exporter
            failures.append(f"{exporter} exporter failed: {_one_line(problem)}")
            continue
        if not error <= TOLERANCE:
            failures.append(
                f"{exporter} exporter's graph differs from PyTorch by {error:.3g} in ONNX Runtime"
            )
            continue
        record = {"exporter": exporter, **details}
        if failures:
            record["fallback_reason"] = failures[0]
        record["check"] = {
            "rows": check_rows,
            "also_batch_of_one": True,
            "max_abs_error": error,
            "tolerance": TOLERANCE,
            "against": "PyTorch (the library call under 'computes'), in ONNX Runtime on CPU",
        }
        data = path.read_bytes()
        record["bytes"] = len(data)
        record["sha256"] = hashlib.sha256(data).hexdigest()
        return record
    path.unlink(missing_ok=True)
    raise ZspaceError(f"could not export the {graph.name} graph: {'; '.join(failures)}")


def check_graph(graph: Graph, path: Path, rows: int = CHECK_ROWS, seed: int = 0) -> float:
    """Largest |ONNX Runtime - library| over every output, on `rows` test inputs in one batch
    and on the first of them alone (the batch dimension must really be dynamic)."""
    session = onnxruntime_session(path)
    inputs = graph.examples(rows, seed)
    worst = 0.0
    for batch in (inputs, tuple(tensor[:1] for tensor in inputs)):
        with torch.no_grad():
            expected = graph.reference(*batch)
        feeds = {spec.name: tensor.numpy() for spec, tensor in zip(graph.inputs, batch)}
        answers = session.run([spec.name for spec in graph.outputs], feeds)
        for spec, answer, wanted in zip(graph.outputs, answers, expected):
            if answer.shape != tuple(wanted.shape) or answer.dtype != np.float32:
                raise ValueError(
                    f"{spec.name} came back {answer.dtype} {answer.shape}, "
                    f"expected float32 {tuple(wanted.shape)}"
                )
            worst = max(worst, float(np.abs(answer - wanted.numpy()).max(initial=0.0)))
    return worst


def _names(graph: Graph) -> tuple[list[str], list[str]]:
    return [spec.name for spec in graph.inputs], [spec.name for spec in graph.outputs]


def _export_dynamo(graph: Graph, examples: tuple, path: Path) -> dict:
    inputs, outputs = _names(graph)
    batch = torch.export.Dim(BATCH)  # one symbol: every input has the same batch size
    shapes = tuple({0: batch} for _ in examples)
    program, tracing = _exported_program(graph.module, examples, shapes)
    torch.onnx.export(
        program,
        examples,
        str(path),
        dynamo=True,
        opset_version=OPSET,
        input_names=inputs,
        output_names=outputs,
        dynamic_shapes=shapes,  # with a program: names the batch dimension "batch"
        external_data=False,
        verbose=False,
    )
    return {"tracing": tracing}


def _exported_program(module, examples: tuple, shapes: tuple):
    """(torch.export program with a really dynamic batch, "non-strict" or "strict").

    Given the module itself, torch.onnx.export quietly fixes the batch size at the example's
    when non-strict tracing specialises it (a transformer encoder's CLS token is expanded to
    len(tokens), which non-strict tracing reads as a plain number); strict tracing (TorchDynamo)
    keeps it symbolic, so it is the second try, and a batch that neither keeps dynamic fails."""
    failures = []
    for tracing in ("non-strict", "strict"):
        try:
            program = torch.export.export(
                module, examples, dynamic_shapes=shapes, strict=tracing == "strict"
            )
        except Exception as error:  # noqa: BLE001 - e.g. a specialised batch: try the next
            failures.append(f"{tracing}: {_one_line(error)}")
            continue
        return program, tracing
    raise RuntimeError(f"torch.export kept no dynamic batch ({'; '.join(failures)})")


def _export_torchscript(graph: Graph, examples: tuple, path: Path) -> dict:
    inputs, outputs = _names(graph)
    torch.onnx.export(
        graph.module,
        examples,
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=inputs,
        output_names=outputs,
        dynamic_axes={name: {0: BATCH} for name in (*inputs, *outputs)},
    )
    return {}


@contextlib.contextmanager
def _quiet():
    """Keep the exporters' progress lines, warnings and log messages off the terminal."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
