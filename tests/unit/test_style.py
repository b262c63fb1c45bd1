"""Style measures of digit images, their correlations and their dependence on the class.

The images are synthetic strokes drawn with torch: anti-aliased segments and rings whose pen
width, slant and position are known.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from zspace.errors import ZspaceError
from zspace.evaluation.style import (
    CHUNK_SIZE,
    STYLE_MEASURES,
    class_dependence,
    mean_style_correlation,
    style_correlations,
    style_measures,
)

SIZE = 28
CENTRE = 13.5  # the middle of the image, in pixels


def pixel_coordinates() -> tuple[torch.Tensor, torch.Tensor]:
    """x (column) and y (row, downwards) of every pixel, each (SIZE, SIZE)."""
    rows, columns = torch.meshgrid(
        torch.arange(SIZE, dtype=torch.float32),
        torch.arange(SIZE, dtype=torch.float32),
        indexing="ij",
    )
    return columns, rows


def draw_segment(start, end, pen_width: float, shear: float = 0.0) -> torch.Tensor:
    """An anti-aliased stroke from start to end ((x, y) in pixels), float (SIZE, SIZE).

    `shear` shears the drawing: each row moves right by shear * (its height above the centre).
    """
    x, y = pixel_coordinates()
    x = x - shear * (CENTRE - y)
    start, end = torch.tensor(start, dtype=torch.float32), torch.tensor(end, dtype=torch.float32)
    along = end - start
    points = torch.stack([x, y], dim=-1)
    fraction = ((points - start) @ along / (along @ along)).clamp(0, 1)
    distance = (points - start - fraction[..., None] * along).norm(dim=-1)
    return (pen_width / 2 + 0.5 - distance).clamp(0, 1)


def draw_ring(centre, radius: float, pen_width: float) -> torch.Tensor:
    """An anti-aliased circle (an "O"), float (SIZE, SIZE)."""
    x, y = pixel_coordinates()
    distance = ((x - centre[0]).square() + (y - centre[1]).square()).sqrt()
    return (pen_width / 2 + 0.5 - (distance - radius).abs()).clamp(0, 1)


def vertical_bar(pen_width: float = 3.0, shear: float = 0.0) -> torch.Tensor:
    return draw_segment((CENTRE, 6.0), (CENTRE, 21.0), pen_width, shear)


def measures_of(*images: torch.Tensor) -> dict[str, torch.Tensor]:
    return style_measures(torch.stack(images))


def dilate(images: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.max_pool2d(images[:, None], 3, stride=1, padding=1)[:, 0]


def erode(images: torch.Tensor) -> torch.Tensor:
    return -dilate(-images)


def test_every_measure_is_a_float_vector_over_the_batch():
    measures = measures_of(vertical_bar(), draw_ring((14, 14), 6, 2.5), torch.zeros(SIZE, SIZE))
    assert tuple(measures) == STYLE_MEASURES
    for values in measures.values():
        assert values.shape == (3,) and values.dtype == torch.float32


def test_a_stroke_whose_top_leans_right_has_positive_slant():
    # Rows grow downwards, so "/" runs from the bottom left to the top right.
    leaning_right = draw_segment((10, 22), (18, 6), 2.5)  # "/"
    leaning_left = draw_segment((10, 6), (18, 22), 2.5)  # "\"
    slant = measures_of(vertical_bar(), leaning_right, leaning_left)["slant"]
    assert slant[0].item() == pytest.approx(0.0, abs=0.01)
    # 8 pixels across for 16 up: a slant of 0.5 either way.
    assert slant[1].item() == pytest.approx(0.5, abs=0.05)
    assert slant[2].item() == pytest.approx(-0.5, abs=0.05)


def test_shearing_adds_the_shear_to_slant_and_keeps_the_stroke_width():
    upright, right, left = vertical_bar(), vertical_bar(shear=0.4), vertical_bar(shear=-0.4)
    measures = measures_of(upright, right, left)
    slant, stroke_width = measures["slant"], measures["stroke_width"]
    assert (slant[1] - slant[0]).item() == pytest.approx(0.4, abs=0.03)
    assert (slant[2] - slant[0]).item() == pytest.approx(-0.4, abs=0.03)
    # A shear narrows the stroke across its own direction by cos(atan(0.4)) = 0.93 only.
    assert stroke_width[1].item() == pytest.approx(stroke_width[0].item(), rel=0.12)
    assert stroke_width[2].item() == pytest.approx(stroke_width[0].item(), rel=0.12)


@pytest.mark.parametrize("pen_width", [2.0, 3.0, 4.0, 5.0])
@pytest.mark.parametrize("direction", ["vertical", "diagonal", "shallow"])
def test_stroke_width_reads_the_pen_width_in_pixels(pen_width, direction):
    ends = {
        "vertical": ((CENTRE, 5.0), (CENTRE, 22.0)),
        "diagonal": ((7.0, 21.0), (20.0, 7.0)),
        "shallow": ((5.0, 17.0), (22.0, 11.0)),
    }[direction]
    stroke_width = measures_of(draw_segment(*ends, pen_width))["stroke_width"].item()
    assert stroke_width == pytest.approx(pen_width, abs=0.4)


def test_dilation_widens_strokes_and_erosion_thins_them():
    strokes = torch.stack(
        [
            vertical_bar(pen_width=5.0),
            draw_segment((7, 21), (20, 7), 5.0),
            draw_ring((14, 14), 7, 5.0),
        ]
    )
    original = style_measures(strokes)["stroke_width"]
    thinned = style_measures(erode(strokes))["stroke_width"]
    thickened = style_measures(dilate(strokes))["stroke_width"]
    # A 3 x 3 max-pool adds a pixel on either side of a stroke; the erosion takes them away.
    assert torch.all(thickened > original + 1.5), (original, thickened)
    assert torch.all(thinned < original - 1.5), (original, thinned)


def test_a_shift_moves_the_centre_by_the_shift_and_leaves_every_other_measure():
    image = torch.maximum(draw_ring((12, 12), 4, 2.0), draw_segment((16, 10), (14, 20), 3.0))
    assert image[:4].sum() == 0 and image[-4:].sum() == 0  # the shift below loses no ink
    assert image[:, :4].sum() == 0 and image[:, -4:].sum() == 0
    shifted = torch.roll(image, shifts=(-2, 3), dims=(0, 1))  # 2 rows up, 3 columns right
    before, after = measures_of(image), measures_of(shifted)
    assert (after["centre_x"] - before["centre_x"]).item() == pytest.approx(3.0, abs=1e-4)
    assert (after["centre_y"] - before["centre_y"]).item() == pytest.approx(-2.0, abs=1e-4)
    for name in STYLE_MEASURES:
        if name not in ("centre_x", "centre_y"):
            torch.testing.assert_close(after[name], before[name], rtol=1e-4, atol=1e-5)


def test_a_bigger_box_has_a_larger_width_and_height():
    small, big = torch.zeros(SIZE, SIZE), torch.zeros(SIZE, SIZE)
    small[10:16, 11:15] = 1.0  # 6 rows, 4 columns
    big[4:24, 6:21] = 1.0  # 20 rows, 15 columns
    big[8:20, 10:17] = 0.0  # hollow: the box is about where the ink reaches, not how much
    measures = measures_of(small, big)
    assert measures["width"].tolist() == [4.0, 15.0]
    assert measures["height"].tolist() == [6.0, 20.0]


def test_faint_pixels_below_the_box_threshold_do_not_widen_the_box():
    image = torch.zeros(SIZE, SIZE)
    image[10:16, 11:15] = 1.0
    haze = image.clone()
    haze[2:26, 2:26] += 0.2  # a faint haze around the digit
    measures = measures_of(image, haze.clamp(0, 1))
    assert measures["width"].tolist() == [4.0, 4.0]
    assert measures["height"].tolist() == [6.0, 6.0]


def test_ink_mass_is_the_summed_intensity():
    image = torch.zeros(SIZE, SIZE)
    image[5:10, 5:7] = 1.0  # 10 pixels of full ink
    image[20, 20] = 0.5
    assert measures_of(image)["ink_mass"].item() == pytest.approx(10.5)


def test_uint8_and_float_images_give_the_same_measures():
    strokes = torch.stack([vertical_bar(shear=0.3), draw_ring((13, 15), 6, 3.0)])
    as_uint8 = (strokes * 255).round().to(torch.uint8)  # (N, 28, 28), 0..255
    from_uint8 = style_measures(as_uint8)
    as_float = as_uint8.float() / 255
    for images in (as_float, as_float[:, None], as_float.double()):
        from_float = style_measures(images)
        for name in STYLE_MEASURES:
            torch.testing.assert_close(from_float[name], from_uint8[name], rtol=1e-5, atol=1e-5)


def test_float_images_are_clamped_to_the_unit_range():
    image = vertical_bar()
    overshoot = image * 1.5 - 0.2  # a generator's output a little outside [0, 1]
    torch.testing.assert_close(
        measures_of(overshoot)["ink_mass"], measures_of(overshoot.clamp(0, 1))["ink_mass"]
    )


def test_blank_images_give_zeros_and_leave_the_rest_of_the_batch_alone():
    blank = torch.zeros(SIZE, SIZE)
    stroke = draw_segment((10, 22), (18, 6), 2.5)
    alone = measures_of(stroke)
    batch = measures_of(blank, stroke, blank)
    blank_uint8 = style_measures(torch.zeros(2, SIZE, SIZE, dtype=torch.uint8))
    for name in STYLE_MEASURES:
        assert batch[name][[0, 2]].tolist() == [0.0, 0.0], name
        assert blank_uint8[name].tolist() == [0.0, 0.0], name
        torch.testing.assert_close(batch[name][1:2], alone[name])


def test_a_single_horizontal_line_has_zero_slant():
    image = torch.zeros(SIZE, SIZE)
    image[14, 5:20] = 1.0  # no vertical spread at all
    slant = measures_of(image)["slant"]
    assert torch.isfinite(slant).all() and slant.item() == 0.0


def test_batches_larger_than_a_chunk_give_the_same_values_in_every_chunk():
    stroke = draw_segment((10, 22), (18, 6), 2.5)
    measures = style_measures(stroke.expand(CHUNK_SIZE + 5, SIZE, SIZE))
    alone = measures_of(stroke)
    for name in STYLE_MEASURES:
        assert measures[name].shape == (CHUNK_SIZE + 5,)
        torch.testing.assert_close(measures[name], alone[name].expand(CHUNK_SIZE + 5))


def test_an_empty_batch_gives_empty_measures():
    measures = style_measures(torch.zeros(0, SIZE, SIZE, dtype=torch.uint8))
    assert all(values.shape == (0,) for values in measures.values())


@pytest.mark.parametrize(
    "images",
    [
        torch.zeros(SIZE, SIZE),  # one image without the batch axis
        torch.zeros(2, 3, SIZE, SIZE),  # colour
        torch.zeros(2, SIZE, SIZE, dtype=torch.int64),
    ],
)
def test_unsupported_images_are_refused(images):
    with pytest.raises(ZspaceError):
        style_measures(images)


def random_measures(n: int = 200, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(n, generator=generator) for name in ("slant", "ink_mass")}


def test_identical_measures_correlate_perfectly():
    measures = random_measures()
    correlations = style_correlations(measures, measures)
    assert correlations == pytest.approx({"slant": 1.0, "ink_mass": 1.0}, abs=1e-9)


def test_a_negated_affine_copy_correlates_at_minus_one():
    measures = random_measures()
    flipped = {name: 2.0 - 3.0 * values for name, values in measures.items()}
    correlations = style_correlations(measures, flipped)
    assert correlations == pytest.approx({"slant": -1.0, "ink_mass": -1.0}, abs=1e-6)


def test_independent_measures_hardly_correlate():
    correlations = style_correlations(random_measures(5000, seed=1), random_measures(5000, seed=2))
    assert all(abs(value) < 0.05 for value in correlations.values())


def test_a_constant_measure_has_no_correlation_and_raises_no_warning():
    measures = random_measures(7)
    # The mean of seven float64 copies of 0.1 is not 0.1, so a test on the centred values
    # alone would find a spread of 1e-17 and give a noise correlation.
    constant = {"slant": measures["slant"], "ink_mass": torch.full((7,), 0.1, dtype=torch.float64)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        correlations = style_correlations(measures, constant)
        reversed_order = style_correlations(constant, measures)
    assert correlations["slant"] == pytest.approx(1.0)
    assert math.isnan(correlations["ink_mass"]) and math.isnan(reversed_order["ink_mass"])


def test_fewer_than_two_items_have_no_correlation():
    one_item = {"slant": torch.tensor([0.3])}
    assert math.isnan(style_correlations(one_item, one_item)["slant"])


def test_correlations_of_shifted_strokes_are_one():
    generator = torch.Generator().manual_seed(0)
    strokes = []
    for _ in range(12):
        start = (torch.rand(2, generator=generator) * 12 + 6).tolist()
        end = (torch.rand(2, generator=generator) * 12 + 6).tolist()
        pen_width = 1.5 + 2 * torch.rand(1, generator=generator).item()
        strokes.append(draw_segment(start, end, pen_width))
    images = torch.stack(strokes)
    shifted = torch.roll(images, shifts=(1, 1), dims=(1, 2))  # the strokes stay inside
    correlations = style_correlations(style_measures(images), style_measures(shifted))
    assert set(correlations) == set(STYLE_MEASURES)
    assert correlations == pytest.approx(dict.fromkeys(STYLE_MEASURES, 1.0), abs=1e-5)


def test_mismatched_measure_sets_are_refused():
    measures = random_measures()
    with pytest.raises(ZspaceError):
        style_correlations(measures, {"slant": measures["slant"]})
    with pytest.raises(ZspaceError):
        style_correlations(measures, {name: values[:-1] for name, values in measures.items()})


def test_mean_style_correlation_skips_undefined_measures():
    assert mean_style_correlation({"a": 1.0, "b": math.nan, "c": 0.5}) == pytest.approx(0.75)
    assert math.isnan(mean_style_correlation({"a": math.nan}))
    assert math.isnan(mean_style_correlation({}))


def test_class_dependence_is_one_for_the_label_and_near_zero_for_noise():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (10_000,), generator=generator)
    noise = torch.randn(10_000, generator=generator)
    # Labels 0..9 have variance 8.25; noise of the same variance leaves the class half of it.
    half = labels.double() + math.sqrt(8.25) * noise
    dependence = class_dependence({"label": labels.float(), "noise": noise, "half": half}, labels)
    assert dependence["label"] == pytest.approx(1.0, abs=1e-9)
    assert dependence["noise"] < 0.01
    assert dependence["half"] == pytest.approx(0.5, abs=0.05)


def test_class_dependence_takes_any_label_values_and_gives_nan_when_constant():
    labels = torch.tensor([3, 3, 7, 7, 9, 9, 9])
    measures = {
        "by_class": torch.tensor([1.0, 1.0, 5.0, 5.0, 2.0, 2.0, 2.0]),
        "flat": torch.full((7,), 0.1, dtype=torch.float64),  # its mean is not exactly 0.1
    }
    dependence = class_dependence(measures, labels.numpy())
    assert dependence["by_class"] == pytest.approx(1.0)
    assert math.isnan(dependence["flat"])
    with pytest.raises(ZspaceError):
        class_dependence({"short": torch.ones(5)}, labels)
