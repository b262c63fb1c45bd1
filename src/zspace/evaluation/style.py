"""Style measures of digit images: slant, stroke width, ink, size and position.

A class-to-class translation (turn a 4 into a 9) should keep the writer's hand: slant, pen
width, size and position. `style_measures` reads these from images; `style_correlations`
compares the measures of inputs with those of their translations, item by item; and
`class_dependence` shows how far each measure is really independent of the digit. On the
MNIST test set the class explains 46% of the variance of `width` (a 1 is narrow whatever the
hand), 34% of `ink_mass`, 11% of `slant` and `height`, 3% of `stroke_width` and nearly none of
the centre, which MNIST itself fixes to within a pixel (its digits are centred by mass).

Every measure is a few tensor operations over the batch: 10,000 MNIST images take about
0.15 s on one CPU thread.
"""

from __future__ import annotations

import math

import torch

from zspace.errors import ZspaceError

STYLE_MEASURES: tuple[str, ...] = (
    "slant",
    "stroke_width",
    "ink_mass",
    "width",
    "height",
    "centre_x",
    "centre_y",
)

# Pixels at or above this intensity (in [0, 1]) count as ink for the bounding box: half-way
# up, so the faint anti-aliased rim and any haze of a generator do not widen the box.
BOX_THRESHOLD = 0.5

# Stroke width reads ink through a linear ramp from RAMP_LOW (0) to RAMP_HIGH (1). Averaging
# over these levels is steadier than one hard threshold, and the faint haze below RAMP_LOW
# that generators leave would otherwise add a large, spurious perimeter.
RAMP_LOW, RAMP_HIGH = 0.25, 0.75

CHUNK_SIZE = 1024  # images per vectorised pass


def style_measures(images) -> dict[str, torch.Tensor]:
    """One float32 (N,) tensor per name in `STYLE_MEASURES`.

    Args:
        images: uint8 (N, H, W) in 0..255, or float (N, H, W) or (N, 1, H, W) in [0, 1]
            (clamped to it). Coordinates are in pixels: x is the column, y the row (downwards).

    An image without ink gets 0 for every measure rather than NaN.
    """
    images = _as_image_batch(images)
    if len(images) == 0:
        return {name: torch.zeros(0, device=images.device) for name in STYLE_MEASURES}
    # Chunks keep each step's temporaries in the CPU cache: about twice as fast as one pass.
    parts = [_measure_chunk(_as_unit_float(chunk)) for chunk in images.split(CHUNK_SIZE)]
    return {name: torch.cat([part[name] for part in parts]) for name in STYLE_MEASURES}


def _measure_chunk(ink: torch.Tensor) -> dict[str, torch.Tensor]:
    """`style_measures` of float (N, H, W) images in [0, 1]."""
    _, height, width = ink.shape
    columns = torch.arange(width, dtype=ink.dtype, device=ink.device)  # x of each column
    rows = torch.arange(height, dtype=ink.dtype, device=ink.device)  # y of each row

    # ink_mass: total intensity, the area the pen covered weighted by how dark it is.
    ink_mass = ink.sum(dim=(1, 2))
    has_ink = ink_mass > 0
    safe_mass = torch.where(has_ink, ink_mass, torch.ones_like(ink_mass))

    # centre_x, centre_y: intensity-weighted centre of mass, from the column and row profiles.
    column_profile = ink.sum(dim=1)  # (N, W)
    row_profile = ink.sum(dim=2)  # (N, H)
    centre_x = torch.where(has_ink, column_profile @ columns / safe_mass, 0.0)
    centre_y = torch.where(has_ink, row_profile @ rows / safe_mass, 0.0)

    # slant: horizontal drift of the ink per pixel of height *going up*, mu11 / mu02 with y
    # flipped to point up. Positive when the top leans right (like "/"), 0 when upright,
    # negative when it leans left; shearing x by s * (height above the centre) adds s.
    dx = columns - centre_x[:, None]  # (N, W)
    dy_up = centre_y[:, None] - rows  # (N, H)
    mu11 = ((ink @ dx[:, :, None])[:, :, 0] * dy_up).sum(dim=1)  # sum of ink * dx * dy_up
    mu02 = row_profile.mul(dy_up.square()).sum(dim=1)
    # A single horizontal line has no vertical spread, so no slant to speak of.
    has_height = mu02 > 1e-6 * safe_mass
    slant = torch.where(has_height, mu11 / torch.where(has_height, mu02, 1.0), 0.0)

    # width, height: bounding box of the pixels at or above BOX_THRESHOLD.
    # A column (row) is inside the box when its darkest pixel reaches the threshold.
    box_width = _extent(ink.amax(dim=1) >= BOX_THRESHOLD)
    box_height = _extent(ink.amax(dim=2) >= BOX_THRESHOLD)

    return {
        "slant": slant,
        "stroke_width": _stroke_width(ink),
        "ink_mass": ink_mass,
        "width": box_width,
        "height": box_height,
        "centre_x": centre_x,
        "centre_y": centre_y,
    }


def _as_image_batch(images) -> torch.Tensor:
    """(N, H, W) uint8 or float images, the channel axis of (N, 1, H, W) dropped."""
    images = torch.as_tensor(images)
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3:
        raise ZspaceError(
            f"style measures need images shaped (N, H, W) or (N, 1, H, W), got {tuple(images.shape)}"
        )
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise ZspaceError(f"style measures need uint8 or float images, got {images.dtype}")
    return images


def _as_unit_float(images: torch.Tensor) -> torch.Tensor:
    """float32 in [0, 1] from uint8 0..255 or float images."""
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images.float().clamp(0.0, 1.0)


def _extent(occupied: torch.Tensor) -> torch.Tensor:
    """Span in pixels from the first to the last True along the last axis, 0 when none."""
    size = occupied.shape[-1]
    first = occupied.int().argmax(dim=-1)
    last = size - 1 - occupied.flip(-1).int().argmax(dim=-1)
    return torch.where(occupied.any(dim=-1), last - first + 1, 0).float()


def _stroke_width(ink: torch.Tensor) -> torch.Tensor:
    """Pen width in pixels: ink area and perimeter read as those of a ribbon, (N,).

    A ribbon w wide and L long has area A = w L and perimeter P = 2 (w + L), so
    w = (P - sqrt(P^2 - 16 A)) / 4, the smaller root; a closed loop comes out within w^2 / L.
    Area and perimeter are of the ramped image, which by the co-area formula averages those of
    its level sets. The perimeter is the summed gradient length: it follows diagonal edges
    instead of counting the pixel staircase, which would make slanted strokes read thinner.
    """
    ramped = (ink - RAMP_LOW).mul_(1.0 / (RAMP_HIGH - RAMP_LOW)).clamp_(0.0, 1.0)
    area = ramped.sum(dim=(1, 2))
    # The gradient at each 2 x 2 cell of a zero-padded image (the mean of its two differences
    # along each axis): symmetric under flips, and it counts both edges of a one-pixel stroke,
    # which central differences would cancel. The padding gives ink at the border an edge.
    padded = torch.nn.functional.pad(ramped, (1, 1, 1, 1))  # (N, H + 2, W + 2)
    across = padded.diff(dim=2)  # (N, H + 2, W + 1)
    down = padded.diff(dim=1)  # (N, H + 1, W + 2)
    gradient_x = (across[:, 1:] + across[:, :-1]) / 2  # (N, H + 1, W + 1)
    gradient_y = (down[:, :, 1:] + down[:, :, :-1]) / 2
    perimeter = torch.hypot(gradient_x, gradient_y).sum(dim=(1, 2))
    # A compact blob (a dot) has P^2 < 16 A; the clamp reads it as a square, w = P / 4.
    discriminant = (perimeter.square() - 16 * area).clamp_min(0.0)
    return (perimeter - discriminant.sqrt()) / 4


def style_correlations(before: dict, after: dict) -> dict[str, float]:
    """Pearson correlation per measure between two sets of measures of the same N items.

    Typically `before` holds the measures of input images and `after` those of their
    translations. A measure that is constant in either set (or N < 2) has no correlation and
    gives float('nan'); `mean_style_correlation` skips those.
    """
    missing = [name for name in before if name not in after]
    if missing:
        raise ZspaceError(f"style measures missing from the second set: {missing}")
    return {name: _pearson(before[name], after[name], name) for name in before}


def _pearson(values_a, values_b, name: str) -> float:
    values_a = torch.as_tensor(values_a).detach().cpu().double().flatten()
    values_b = torch.as_tensor(values_b).detach().cpu().double().flatten()
    if len(values_a) != len(values_b):
        raise ZspaceError(
            f"style measure {name!r} has {len(values_a)} items before and {len(values_b)} after"
        )
    # Test constancy exactly: the mean of N equal floats is not always that float, so the
    # centred values of a constant measure can be 1e-17 instead of 0 and give a noise "r".
    if len(values_a) < 2 or _is_constant(values_a) or _is_constant(values_b):
        return math.nan
    centred_a = values_a - values_a.mean()
    centred_b = values_b - values_b.mean()
    denominator = (centred_a.square().sum() * centred_b.square().sum()).sqrt()
    if denominator == 0:
        return math.nan
    return (centred_a @ centred_b / denominator).clamp(-1.0, 1.0).item()


def _is_constant(values: torch.Tensor) -> bool:
    return bool((values == values[0]).all())


def mean_style_correlation(correlations: dict) -> float:
    """Mean of the correlations that are not NaN; NaN when all are (or there are none)."""
    defined = [value for value in correlations.values() if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan


def class_dependence(measures: dict, labels) -> dict[str, float]:
    """Share of each measure's variance that the class explains (eta squared), in [0, 1].

    Between-class variance over total variance: 0 when every class has the same mean, 1 when
    the measure is a function of the class. A constant measure gives float('nan').
    """
    labels = torch.as_tensor(labels).cpu().flatten()
    _, class_index = torch.unique(labels, return_inverse=True)
    num_classes = int(class_index.max()) + 1 if len(labels) else 0
    class_sizes = torch.bincount(class_index, minlength=num_classes).double()
    dependence = {}
    for name, values in measures.items():
        values = torch.as_tensor(values).detach().cpu().double().flatten()
        if len(values) != len(labels):
            raise ZspaceError(
                f"style measure {name!r} has {len(values)} items but there are {len(labels)} labels"
            )
        if len(values) == 0 or _is_constant(values):
            dependence[name] = math.nan
            continue
        centred = values - values.mean()
        total = centred.square().sum()
        class_sums = torch.zeros(num_classes, dtype=torch.float64).index_add_(
            0, class_index, centred
        )
        # Between-class sum of squares, n_k (class mean - mean)^2 summed over classes k;
        # the values are centred, so each term is (class sum)^2 / n_k.
        between = (class_sums.square() / class_sizes).sum()
        dependence[name] = (between / total).clamp(0.0, 1.0).item() if total > 0 else math.nan
    return dependence
