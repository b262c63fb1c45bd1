"""PNG figures: image grids (Pillow) and line plots (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zspace.files import save_figure, save_png


def _as_uint8_array(images) -> np.ndarray:
    """Accept uint8 or float [0,1] tensors/arrays shaped (..., 28, 28) or (..., 1, 28, 28)."""
    if torch.is_tensor(images):
        images = images.detach().cpu()
        if images.dtype != torch.uint8:
            images = images.clamp(0, 1).mul(255).round().to(torch.uint8)
        images = images.numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    if images.ndim >= 3 and images.shape[-3] == 1:
        images = images.squeeze(-3)
    return images


def grid_image(images, ncols: int | None = None, padding: int = 2, scale: int = 1) -> Image.Image:
    """Tile images into one grayscale picture.

    `images` is (N, H, W) (laid out row by row in `ncols` columns) or (R, C, H, W) (one row per R).
    """
    array = _as_uint8_array(images)
    if array.ndim == 4:
        rows, ncols = array.shape[:2]
        array = array.reshape(rows * ncols, *array.shape[2:])
    count, height, width = array.shape
    ncols = ncols or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / ncols))
    canvas = np.full(
        (rows * (height + padding) + padding, ncols * (width + padding) + padding), 64, np.uint8
    )
    for index in range(count):
        row, col = divmod(index, ncols)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        canvas[top : top + height, left : left + width] = array[index]
    picture = Image.fromarray(canvas, mode="L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def save_grid(images, path: str | Path, ncols: int | None = None, scale: int = 2) -> Path:
    return save_png(grid_image(images, ncols=ncols, scale=scale), path)


def save_line_plot(
    series: dict[str, tuple[list, list]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    logy: bool = False,
) -> Path:
    """Plot named (x, y) series to a PNG."""
    import matplotlib  # about 0.7 s to import: only the plots pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for label, (xs, ys) in series.items():
        axis.plot(xs, ys, marker="o", markersize=3, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if logy:
        axis.set_yscale("log")
    if title:
        axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)
    return path


def save_scatter_by_class(
    points: torch.Tensor, labels: torch.Tensor, path: str | Path, title: str = ""
) -> Path:
    """2-D points coloured by their class (0-9), with a legend."""
    import matplotlib  # about 0.7 s to import: only the plots pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    points, labels = np.asarray(points), np.asarray(labels)
    figure, axis = plt.subplots(figsize=(6, 5.5), dpi=100)
    colours = plt.get_cmap("tab10")
    for digit in range(10):
        chosen = labels == digit
        axis.scatter(*points[chosen].T, s=3, alpha=0.5, color=colours(digit), label=str(digit))
    axis.legend(markerscale=4, title="digit", loc="best", fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title)
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)
    return path


def save_point_panels(
    panels: dict[str, dict[str, tuple[float, float]]],
    groups: dict[str, str],
    path: str | Path,
    xlabel: str,
    title: str = "",
    logx: bool = False,
    logy: tuple[str, ...] = (),
) -> Path:
    """Side-by-side panels of labelled points, one marker per point.

    `panels` maps each panel's y label to {point label: (x, y)}; `groups` gives each point its
    group, which sets its marker and colour (one legend entry per group). Panels named in
    `logy` get a log y axis; None values are left out."""
    import matplotlib  # about 0.7 s to import: only the plots pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    names = list(dict.fromkeys(groups.values()))
    markers, colours = "o^sDvP*X", plt.get_cmap("tab10")
    style = {g: (markers[i % len(markers)], colours(i % 10)) for i, g in enumerate(names)}
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), dpi=100)
    axes = np.atleast_1d(axes)
    for axis, (ylabel, points) in zip(axes, panels.items()):
        shown = set()
        for label, (x, y) in points.items():
            if x is None or y is None:
                continue
            group = groups.get(label, "")
            marker, colour = style.get(group, ("o", "black"))
            legend = group if group not in shown else None
            shown.add(group)
            axis.scatter([x], [y], marker=marker, color=colour, s=50, label=legend)
            axis.annotate(label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        if logx:
            _log_scale(axis.xaxis, axis.set_xscale)
        if ylabel in logy:
            _log_scale(axis.yaxis, axis.set_yscale)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path)
    plt.close(figure)
    return path


def _log_scale(axis, set_scale) -> None:
    """A log axis labelled 1, 2, 5, 10, 20, ... in plain numbers (no crowded minor labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    set_scale("log")
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())
