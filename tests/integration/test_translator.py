"""Class-to-class translators on an MNIST subset, through the CLI: `zspace train-translator`
(every method, one pair and all pairs), exact resume, `zspace translate` on an .npz and a PNG,
the measures of `TranslationJudge`, the paired method's pairs from a real conditional GAN, and
the mistakes a user makes (one line, a nonzero exit, nothing written)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import zspace
from zspace.cli.main import main
from zspace.data import load_dataset
from zspace.evaluation.style import STYLE_MEASURES
from zspace.evaluation.translation import TranslationJudge
from zspace.figures import grid_image
from zspace.models.images import to_float_images
from zspace.sampling.sampler import noise_stream
from zspace.sampling.translator import Translator
from zspace.training.translator_pairs import PAIR_NOISE_STREAM, generated_pairs

SOURCE, TARGET = 4, 9
# Small and quick: 2,000 training images, batches of 64, a few steps an epoch.
QUICK = ["--limit", "2000", "--batch-size", "64", "--device", "cpu", "--no-progress"]
WEIGHTS = ("translator", "translator_ema", "critic", "scaler")


def _train(out, mnist_dir, *argv) -> int:
    return main(
        ["train-translator", *argv, *QUICK, "--data-dir", str(mnist_dir), "--out", str(out)]
    )


def _pair(ae_run, method, *argv) -> list[str]:
    """The flags of a per-pair run SOURCE -> TARGET of `method` on `ae_run`."""
    pair = ["--from", str(SOURCE), "--to", str(TARGET)]
    return ["--ae", str(ae_run), "--method", method, *pair, *argv]


def _metrics(run) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def _snapshot(folder) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def _tiny_ae(out, mnist_dir, latent_dim: int):
    from zspace.models.encoders import AutoencoderConfig
    from zspace.training.autoencoder import AETrainingConfig, train_autoencoder

    train_autoencoder(
        out,
        AutoencoderConfig(preset="mlp", latent_dim=latent_dim, hidden_dims=[64]),
        AETrainingConfig(limit=500, epochs=1, batch_size=64, seed=0),
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def cycle_run(small_ae_run, mnist_dir, tmp_path_factory):
    """A cycle translator 4 <-> 9, one epoch of 20 steps, trained by the CLI; read-only."""
    out = tmp_path_factory.mktemp("cycle") / "run"
    argv = _pair(small_ae_run, "cycle", "--epochs", "1", "--steps-per-epoch", "20")
    assert _train(out, mnist_dir, *argv) == 0
    return out


@pytest.fixture(scope="module")
def regular_run(small_ae_run, mnist_dir, tmp_path_factory):
    """A regular translator 4 -> 9, two epochs of 5 steps (resume's reference); read-only."""
    out = tmp_path_factory.mktemp("regular") / "run"
    argv = _pair(small_ae_run, "regular", "--epochs", "2", "--steps-per-epoch", "5")
    assert _train(out, mnist_dir, *argv) == 0
    return out


@pytest.fixture(scope="module")
def all_pairs_run(small_ae_run, mnist_dir, tmp_path_factory):
    """One regular translator for every ordered pair (`--to all`); read-only."""
    out = tmp_path_factory.mktemp("all") / "run"
    argv = ["--ae", str(small_ae_run), "--method", "regular", "--to", "all", "--epochs", "1"]
    assert _train(out, mnist_dir, *argv, "--steps-per-epoch", "10") == 0
    return out


@pytest.fixture(scope="module")
def shift_run(small_ae_run, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("shift") / "run"
    assert _train(out, mnist_dir, *_pair(small_ae_run, "shift")) == 0
    return out


@pytest.fixture(scope="module")
def unconditional_gan_run(small_ae_run, mnist_dir, tmp_path_factory):
    from zspace.models.gan import config_for_preset
    from zspace.training.gan import GANTrainingConfig, train_gan

    out = tmp_path_factory.mktemp("ugan") / "run"
    train_gan(
        out,
        config_for_preset("reference", data_dim=64, conditional=False),
        GANTrainingConfig.for_preset(
            "reference", limit=300, epochs=1, seed=0, monitor_samples=0, inverter_steps=0
        ),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    return out


@pytest.fixture(scope="module")
def other_ae_run(mnist_dir, tmp_path_factory):
    """An autoencoder with 64-d codes like `small_ae_run`'s, but not the same one."""
    return _tiny_ae(tmp_path_factory.mktemp("other-ae") / "run", mnist_dir, latent_dim=64)


@pytest.fixture(scope="module")
def test_digits(mnist_dir):
    data = load_dataset("mnist", data_dir=mnist_dir, limit=2000)
    return data.test_images, data.test_labels


@pytest.fixture
def fours(test_digits, tmp_path):
    """(uint8 (5, 28, 28) test 4s, an .npz of them, a PNG of the first, dark on light)."""
    images = test_digits[0][test_digits[1] == SOURCE][:5].numpy()
    np.savez(tmp_path / "fours.npz", images=images)
    Image.fromarray(255 - images[0]).resize((84, 84)).save(tmp_path / "four.png")
    return images, tmp_path / "fours.npz", tmp_path / "four.png"


def _translated_pixels(translator, images, target, source=None) -> np.ndarray:
    translated = translator.translate_images(images, target, source)
    return (translated.squeeze(1).clamp(0, 1) * 255).round().byte().numpy()


def test_train_translator_writes_a_complete_run(cycle_run):
    names = {p.name for p in cycle_run.iterdir()}
    for name in WEIGHTS + ("checkpoint", "autoencoder"):
        assert f"{name}.safetensors" in names
    assert {"config.json", "metrics.jsonl", "README.md"} <= names
    config = json.loads((cycle_run / "config.json").read_text())
    assert config["kind"] == "translator" and "generator" not in config
    assert config["model"]["method"] == "cycle"
    assert (config["model"]["source"], config["model"]["target"]) == (SOURCE, TARGET)
    assert config["training"]["limit"] == 2000 and config["training"]["steps_per_epoch"] == 20
    [record] = _metrics(cycle_run)
    assert record["epoch"] == 1 and {"critic_loss", "adversarial", "cycle_l1", "mean_gap"} <= set(
        record
    )
    assert all(np.isfinite(value) for value in record.values())
    assert "zspace train-translator" in (cycle_run / "README.md").read_text()


def test_cli_round_trip(cycle_run, fours, tmp_path, capsys):
    images, npz, png = fours
    translator = zspace.load(cycle_run)
    assert isinstance(translator, Translator)
    assert repr(translator) == f"Translator(cycle, {SOURCE} -> {TARGET})"
    assert translator.targets == (TARGET, SOURCE) and translator.can_go_back

    out = tmp_path / "out" / "nines.npz"
    assert (
        main(["translate", str(cycle_run), str(npz), "--to", str(TARGET), "--out", str(out)]) == 0
    )
    assert capsys.readouterr().out.strip() == (
        f"translated 5 image(s) into {TARGET} (cycle) -> {out}"
    )
    with np.load(out) as arrays:
        assert arrays["images"].dtype == np.uint8
        assert np.array_equal(arrays["images"], _translated_pixels(translator, images, TARGET))
        assert arrays["targets"].tolist() == [TARGET] * 5
    # 20 steps moved the map from the identity: the pictures are not mere reconstructions.
    reconstructions = translator.decode(translator.encode(images))
    assert not torch.allclose(translator.translate_images(images, TARGET), reconstructions)

    picture = tmp_path / "nine.png"
    argv = ["translate", str(cycle_run), str(png), "--to", str(TARGET), "--json"]
    assert main([*argv, "--scale", "2", "--out", str(picture)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {
        "images": 1,
        "to": TARGET,
        "method": "cycle",
        "out": str(picture),
        "inverted": True,  # dark ink on light paper
    }
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(picture).size == grid_image(torch.zeros(1, 1, 28, 28), 1, scale=2).size
    # The way back of a cycle run: 9 -> 4, its input's digit taken from the pair.
    back = tmp_path / "back.npz"
    assert (
        main(["translate", str(cycle_run), str(out), "--to", str(SOURCE), "--out", str(back)]) == 0
    )
    assert back.is_file()


def test_all_pairs_translator_makes_every_digit(all_pairs_run, fours, tmp_path, capsys):
    images, npz, _ = fours
    config = json.loads((all_pairs_run / "config.json").read_text())
    assert config["model"]["source"] is None and config["model"]["target"] is None
    translator = zspace.load(all_pairs_run)
    assert translator.targets == tuple(range(10)) and translator.config.all_pairs
    assert repr(translator) == "Translator(regular, all pairs)"
    outputs = {}
    for target in (1, 3, 7):
        out = tmp_path / f"to{target}.npz"
        argv = ["translate", str(all_pairs_run), str(npz), "--to", str(target), "--out", str(out)]
        assert main([*argv, "--from", str(SOURCE)]) == 0
        with np.load(out) as arrays:
            outputs[target] = arrays["images"]
            assert arrays["targets"].tolist() == [target] * 5
    assert "into 7 (regular)" in capsys.readouterr().out
    # One network, but the target class is its input: each digit its own output.
    codes = translator.encode(images)
    three, seven = translator.translate_codes(codes, 3), translator.translate_codes(codes, 7)
    assert not torch.allclose(three, seven)
    assert np.array_equal(outputs[3], _translated_pixels(translator, images, 3))


def test_resume_continues_exactly(regular_run, small_ae_run, mnist_dir, tmp_path, capsys):
    cut = tmp_path / "cut"
    argv = _pair(small_ae_run, "regular", "--steps-per-epoch", "5")
    assert _train(cut, mnist_dir, *argv, "--epochs", "1") == 0
    assert [m["epoch"] for m in _metrics(cut)] == [1]
    # The run's own settings and autoencoder are used: only the epochs are given.
    resume = ["train-translator", "--resume", "--epochs", "2", "--data-dir", str(mnist_dir)]
    assert main([*resume, "--device", "cpu", "--no-progress", "--out", str(cut)]) == 0
    for name in WEIGHTS:
        straight = load_file(str(regular_run / f"{name}.safetensors"))
        resumed = load_file(str(cut / f"{name}.safetensors"))
        assert straight.keys() == resumed.keys()
        assert all(torch.equal(straight[key], resumed[key]) for key in straight), name
    assert _metrics(cut) == _metrics(regular_run)
    assert [m["epoch"] for m in _metrics(regular_run)] == [1, 2]
    capsys.readouterr()

    # Another seed on resume is refused in one line, and the run is left alone.
    before = _snapshot(cut)
    assert main([*resume, "--seed", "5", "--device", "cpu", "--out", str(cut)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drop --seed" in err[0], err
    assert _snapshot(cut) == before
    # Without --resume the folder is not overwritten.
    assert _train(cut, mnist_dir, *argv, "--epochs", "3") == 1
    assert "already holds a run" in capsys.readouterr().err
    assert _snapshot(cut) == before


def test_paired_run_learns_from_pairs_of_the_generator(
    small_ae_run, web_cgan_run, mnist_dir, tmp_path, fours
):
    out = tmp_path / "paired"
    argv = _pair(small_ae_run, "paired", "--generator", str(web_cgan_run), "--pairs", "256")
    assert _train(out, mnist_dir, *argv, "--epochs", "1", "--steps-per-epoch", "5") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["generator"]["source"] == str(web_cgan_run.resolve())
    assert config["training"]["pairs"] == 256
    [record] = _metrics(out)
    assert record["pair_l1"] > 0 and "cycle_l1" not in record
    translator = zspace.load(out)
    assert translator.method == "paired" and translator.targets == (TARGET,)
    assert translator.translate_images(fours[0], TARGET).shape == (5, 1, 28, 28)


def test_generated_pairs_share_one_noise(web_cgan_run):
    sampler = zspace.load(web_cgan_run)
    pairs = generated_pairs(sampler, (SOURCE, TARGET), count=6, seed=3)
    assert pairs.shape == (6, 2, 64)  # codes of small_ae_run
    # Each column alone is the same draw: the noise depends on the seed, not the classes.
    assert torch.equal(generated_pairs(sampler, (TARGET,), 6, 3)[:, 0], pairs[:, 1])
    assert torch.equal(generated_pairs(sampler, (SOURCE, TARGET), 6, 3), pairs)
    assert not torch.allclose(generated_pairs(sampler, (SOURCE, TARGET), 6, 4), pairs)
    # Row i is noise i drawn with each label: regenerate it from its noise.
    noise = torch.randn(6, sampler.noise_dim, generator=noise_stream(3 * PAIR_NOISE_STREAM + 1))
    for row in (0, 5):
        for column, digit in enumerate((SOURCE, TARGET)):
            alone = sampler.generate_codes(noise[row : row + 1], torch.tensor([digit]))
            assert torch.allclose(pairs[row, column], alone[0], atol=1e-5)
    assert not torch.allclose(pairs[:, 0], pairs[:, 1])  # the label matters


class PixelClassifier:
    """A stand-in evaluation classifier: features are a fixed random projection of the pixels,
    the class the largest of ten fixed projections of the features."""

    def __init__(self):
        generator = torch.Generator().manual_seed(0)
        self.projection = torch.randn(28 * 28, 12, generator=generator) / 28
        self.head = torch.randn(12, 10, generator=generator)

    def features(self, images):
        return to_float_images(torch.as_tensor(images)).reshape(len(images), -1) @ self.projection

    def predict_with_features(self, images):
        features = self.features(images)
        probabilities = (features @ self.head).softmax(1)
        return probabilities.argmax(1), probabilities, features


def test_judge_measures_every_translator(
    cycle_run, regular_run, shift_run, all_pairs_run, small_ae_run, test_digits
):
    autoencoder = zspace.load(small_ae_run)
    judge = TranslationJudge(PixelClassifier(), autoencoder, *test_digits, per_class=40)
    expected_keys = {
        "method",
        "scope",
        "source",
        "target",
        "count",
        "accuracy",
        "fd",
        "fd_reconstruction",
        "fd_ratio",
        "fd_sampler",
        "fd_sampler_ratio",
        "style",
        "style_kept",
        "style_ceiling",
        "cycle_error",
        "translate_seconds",
    }
    results = {}
    for run in (cycle_run, regular_run, shift_run, all_pairs_run):
        result = judge.judge(zspace.load(run), SOURCE, TARGET)
        assert set(result) == expected_keys
        assert (result["source"], result["target"], result["count"]) == (SOURCE, TARGET, 40)
        assert 0 <= result["accuracy"] <= 1
        assert result["fd"] >= 0 and result["fd_reconstruction"] >= 0
        assert result["fd_ratio"] == pytest.approx(result["fd"] / result["fd_reconstruction"])
        assert set(result["style"]) == set(STYLE_MEASURES)
        assert all(-1 <= value <= 1 for value in result["style"].values() if np.isfinite(value))
        assert -1 <= result["style_kept"] <= 1 and -1 <= result["style_ceiling"] <= 1
        assert result["translate_seconds"] >= 0
        results[(result["method"], result["scope"])] = result
    assert set(results) == {
        ("cycle", "pair"),
        ("regular", "pair"),
        ("shift", "pair"),
        ("regular", "all"),
    }
    assert results[("regular", "pair")]["cycle_error"] is None  # no way back
    assert results[("cycle", "pair")]["cycle_error"] > 0
    assert results[("regular", "all")]["cycle_error"] > 0
    # The shift there and back is the identity: its round trip is its reconstruction.
    assert results[("shift", "pair")]["cycle_error"] == pytest.approx(0, abs=1e-6)
    assert judge.references(SOURCE, TARGET) == {
        "fd_reconstruction": results[("shift", "pair")]["fd_reconstruction"],
        "fd_sampler": None,  # the judge was given no training digits
        "style_ceiling": results[("shift", "pair")]["style_ceiling"],
    }


@pytest.mark.parametrize("method", ["cycle", "shift"])
def test_train_translator_on_codes_of_another_size(method, mnist_dir, tmp_path, fours):
    """A 16-d autoencoder: the translator's width comes from the AE, not a 64-d default."""
    narrow_ae = _tiny_ae(tmp_path / "ae16", mnist_dir, latent_dim=16)
    out = tmp_path / "run"
    assert (
        _train(out, mnist_dir, *_pair(narrow_ae, method, "--epochs", "1", "--steps-per-epoch", "2"))
        == 0
    )
    translator = zspace.load(out)
    assert translator.config.data_dim == 16
    assert translator.translate_images(fours[0], TARGET).shape == (5, 1, 28, 28)


PAIR = "--from 4 --to 9"


@pytest.mark.parametrize(
    "command, message, written",
    [
        ("train-translator --ae AE --from 4 --to 4", "both 4", "t"),
        ("train-translator --ae AE --from 4 --to 12", "--to", "t"),
        ("train-translator --ae AE --from 11 --to 3", "--from", "t"),
        ("train-translator --ae AE --from 3 --to all", "no --from", "t"),
        ("train-translator --ae AE --to 3", "needs --from", "t"),
        (f"train-translator --ae missing {PAIR}", "missing", "t"),
        (f"train-translator {PAIR}", "--ae", "t"),
        (f"train-translator --ae CGAN {PAIR}", "expected autoencoder", "t"),
        (f"train-translator --ae AE --method paired {PAIR}", "needs --generator", "t"),
        (
            f"train-translator --ae AE --method paired {PAIR} --generator UGAN",
            "not a conditional generator",
            "t",
        ),
        (
            f"train-translator --ae OTHER --method paired {PAIR} --generator CGAN",
            "trained on another autoencoder",
            "t",
        ),
        (
            f"train-translator --ae AE --method paired {PAIR} --generator AE",
            "cannot translate",
            "t",
        ),
        (f"train-translator --ae AE --method cycle {PAIR} --generator CGAN", "no --generator", "t"),
        ("translate CYCLE FOURS --to 3 --out x.npz", "makes 9 or 4, not 3", "x.npz"),
        ("translate CYCLE FOURS --to 12 --out x.npz", "--to", "x.npz"),
        ("translate CYCLE FOURS --to 9 --from 3 --out x.npz", "turns 4 into 9, not 3", "x.npz"),
        ("translate ALL FOURS --to 4 --from 4 --out x.npz", "already a 4", "x.npz"),
        ("translate CYCLE TEXT --to 9 --out x.png", "not an image", "x.png"),
        ("translate CYCLE BLANK --to 9 --out x.png", "looks blank", "x.png"),
        ("translate CYCLE NO_IMAGES --to 9 --out x.npz", "no 'images'", "x.npz"),
        ("translate CYCLE WIDE --to 9 --out x.npz", "(2, 32, 32)", "x.npz"),
        ("translate CYCLE FLOATS --to 9 --out x.npz", "dtype float32", "x.npz"),
        ("translate CYCLE EMPTY --to 9 --out x.npz", "no images", "x.npz"),
        ("translate CYCLE EMPTY --to 9 --out x.png", "no images", "x.png"),
        ("translate CYCLE missing.png --to 9 --out x.png", "does not exist", "x.png"),
        ("translate CYCLE FOURS --to 9 --out x.txt", ".png or .npz", "x.txt"),
        ("translate CGAN FOURS --to 9 --out x.npz", "expected translator", "x.npz"),
        ("translate AE FOURS --to 9 --out x.npz", "expected translator", "x.npz"),
        ("sample CYCLE --digit 3 --out x.npz", "cannot sample", "x.npz"),
    ],
)
def test_cli_user_mistakes_are_one_line(
    command,
    message,
    written,
    cycle_run,
    all_pairs_run,
    small_ae_run,
    web_cgan_run,
    unconditional_gan_run,
    other_ae_run,
    fours,
    mnist_dir,
    capsys,
    tmp_path,
    monkeypatch,
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.png").write_text("not a picture\n")
    Image.new("L", (28, 28), 255).save(tmp_path / "blank.png")
    np.savez(tmp_path / "no_images.npz", pictures=np.zeros((2, 28, 28), np.uint8))
    np.savez(tmp_path / "wide.npz", images=np.zeros((2, 32, 32), np.uint8))
    np.savez(tmp_path / "floats.npz", images=np.zeros((2, 28, 28), np.float32))
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 28, 28), np.uint8))
    names = {
        "AE": small_ae_run,
        "OTHER": other_ae_run,
        "CGAN": web_cgan_run,
        "UGAN": unconditional_gan_run,
        "CYCLE": cycle_run,
        "ALL": all_pairs_run,
        "FOURS": fours[1],
        "TEXT": "text.png",
        "BLANK": "blank.png",
        "NO_IMAGES": "no_images.npz",
        "WIDE": "wide.npz",
        "FLOATS": "floats.npz",
        "EMPTY": "empty.npz",
    }
    argv = [str(names.get(word, word)) for word in command.split()]
    if argv[0] == "train-translator":
        argv += [*QUICK, "--epochs", "1", "--steps-per-epoch", "2", "--data-dir", str(mnist_dir)]
        argv += ["--out", written]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code != 0
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in captured.err, err
    assert not (tmp_path / written).exists()
