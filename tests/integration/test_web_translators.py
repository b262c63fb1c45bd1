"""/api/restyle's translator methods: translator runs found beside the served run (or in
--translators DIR) redraw an upload, the schema and /api/info list what was found, and a
damaged run is skipped without stopping the server."""

from __future__ import annotations

import base64
import io
import shutil

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the web extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from web_stand_ins import StandInClassifier, untrained_gan_sampler  # noqa: E402

from zspace.errors import ZspaceError  # noqa: E402
from zspace.models.translator import TranslatorConfig  # noqa: E402
from zspace.runs import STUDY, RunDir  # noqa: E402
from zspace.sampling.translator import load_translator  # noqa: E402
from zspace.training.translator import TranslatorTrainingConfig, train_translator  # noqa: E402
from zspace.web import service  # noqa: E402
from zspace.web.app import LOOPBACK_HOSTS, create_app  # noqa: E402
from zspace.web.imaging import prepare_upload  # noqa: E402

PAIR_SHIFT = "translators/pair-4-9/shift"
ALL_SHIFT = "translators/all/shift"
PAIR_REGULAR = "translators/pair-1-7/regular"
TINY = TranslatorTrainingConfig(limit=2000, epochs=1, steps_per_epoch=5)


def train(out, method, source, target, ae_run, data_dir, generator_run=None):
    config = TranslatorConfig(method=method, source=source, target=target)
    train_translator(
        out,
        config,
        TINY,
        ae_run=ae_run,
        generator_run=generator_run,
        data_dir=data_dir,
        device="cpu",
        progress=False,
    )


@pytest.fixture(scope="module")
def translators_dir(small_ae_run, mnist_dir, tmp_path_factory):
    """Three tiny translator runs of `small_ae_run` (about 2 s): shift for 4 <-> 9, shift for
    all pairs, and a one-way regular GAN translator 1 -> 7. Treat them as read-only."""
    root = tmp_path_factory.mktemp("web-translators") / "translators"
    train(root / "pair-4-9" / "shift", "shift", 4, 9, small_ae_run, mnist_dir)
    train(root / "all" / "shift", "shift", None, None, small_ae_run, mnist_dir)
    train(root / "pair-1-7" / "regular", "regular", 1, 7, small_ae_run, mnist_dir)
    return root


@pytest.fixture(scope="module")
def client(web_cgan_run, translators_dir):
    app = create_app(
        web_cgan_run,
        classifier=StandInClassifier(),
        translators_dir=translators_dir,
        restyle_processes=False,  # the worker process is test_web_api's; here it only costs time
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def mnist_digits(mnist_dir) -> dict[int, np.ndarray]:
    """The first MNIST test image of each digit, uint8 (28, 28)."""
    from zspace.data import load_dataset

    dataset = load_dataset("mnist", data_dir=mnist_dir)
    first = {}
    for digit in range(10):
        index = int((dataset.test_labels == digit).nonzero()[0])
        first[digit] = dataset.test_images[index].numpy()
    return first


def upload(pixels: np.ndarray) -> dict:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return {"image": ("d.png", buffer.getvalue(), "image/png")}


def pixels_of(data_url: str) -> np.ndarray:
    encoded = data_url.removeprefix("data:image/png;base64,")
    return np.array(Image.open(io.BytesIO(base64.b64decode(encoded))))


def assert_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def restyle_parameters(schema: dict) -> dict:
    operation = schema["paths"]["/api/restyle"]["post"]
    return {parameter["name"]: parameter for parameter in operation["parameters"]}


# --- translating -----------------------------------------------------------------------------


def test_shift_translates_as_png_and_json(client, mnist_digits, translators_dir):
    four = upload(mnist_digits[4])
    png = client.post("/api/restyle?method=shift&digit=9&source_digit=4&scale=1", files=four)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size == (32, 32)  # one 28 px tile, 2 px padding

    query = "method=shift&digit=9&source_digit=4&scale=1&format=json"
    body = client.post(f"/api/restyle?{query}", files=four).json()
    assert body["method"] == "shift" and body["digits"] == [9]
    assert body["translators"] == [PAIR_SHIFT]  # the pair's own run before the all-pairs one
    assert body["unreachable"] == [] and body["inverted"] is False
    assert body["source"] == "request" and body["source_digit"] == 4
    assert body["probabilities"] is None
    assert body["reconstruction"].startswith("data:image/png")
    # the very pixels the library's translator draws from the upload, prepared as uploads are
    image, _ = prepare_upload(four["image"][1])
    translator = load_translator(translators_dir / "pair-4-9" / "shift")
    expected = translator.translate_images(image[None], 9, 4)[0, 0].numpy()
    difference = np.abs(pixels_of(body["images"][0]).astype(float) - expected * 255)
    assert difference.max() <= 1


def test_without_a_digit_every_reachable_digit(client, mnist_digits):
    four = upload(mnist_digits[4])
    body = client.post("/api/restyle?method=shift&source_digit=4&format=json", files=four).json()
    assert body["digits"] == list(range(10)) and len(body["images"]) == 10
    assert body["unreachable"] == []
    # 4 -> 9 by the pair's run, the rest by the all-pairs run; the 4 itself is the upload's
    # autoencoder reconstruction
    expected = [ALL_SHIFT] * 10
    expected[9], expected[4] = PAIR_SHIFT, None
    assert body["translators"] == expected
    assert body["images"][4] == body["reconstruction"]

    one = upload(mnist_digits[1])
    query = "method=regular&source_digit=1&format=json&scale=1"
    regular = client.post(f"/api/restyle?{query}", files=one).json()
    assert regular["digits"] == [1, 7] and regular["translators"] == [None, PAIR_REGULAR]
    assert regular["unreachable"] == [0, 2, 3, 4, 5, 6, 8, 9]
    grid = client.post("/api/restyle?method=regular&source_digit=1&scale=1", files=one)
    assert Image.open(io.BytesIO(grid.content)).size == (2 * 30 + 2, 32)

    # without source_digit, the classifier reads the upload
    classified = client.post("/api/restyle?method=shift&format=json", files=four).json()
    assert classified["source"] == "classifier" and len(classified["probabilities"]) == 10
    assert classified["digits"] == list(range(10))


def test_a_pair_no_translator_covers_is_a_404(client, mnist_digits):
    seven, four = upload(mnist_digits[7]), upload(mnist_digits[4])
    # the regular run goes 1 -> 7 only
    back = client.post("/api/restyle?method=regular&digit=1&source_digit=7", files=seven)
    assert_error(back, 404, "no regular translator", "a 7 into a 1", "1 -> 7")
    anywhere = client.post("/api/restyle?method=regular&source_digit=4", files=four)
    assert_error(anywhere, 404, "a 4 into another digit")
    # the upload's own digit is always there: its reconstruction
    same = client.post(
        "/api/restyle?method=regular&digit=7&source_digit=7&format=json", files=seven
    )
    assert same.status_code == 200 and same.json()["digits"] == [7]


def test_an_unknown_method_is_a_one_line_400(client, mnist_digits):
    four = upload(mnist_digits[4])
    for method in ("bogus", "cycle"):  # cycle is a method, but none is served here
        response = client.post(f"/api/restyle?method={method}&source_digit=4", files=four)
        assert_error(response, 400, method, "restyle, regular, shift")
    assert_error(client.post(f"/api/restyle?method={'x' * 41}", files=four), 422, "method")
    # refused before the upload is read
    assert_error(client.post("/api/restyle?method=bogus", content=b""), 400, "bogus")


# --- what the server says it offers ----------------------------------------------------------


def test_the_schema_lists_the_methods_found(client):
    schema = client.get("/openapi.json").json()
    method = restyle_parameters(schema)["method"]
    assert method["schema"] == {"enum": ["restyle", "regular", "shift"], "type": "string"}
    assert not method.get("required")  # without it: today's restyle
    assert "404" in schema["paths"]["/api/restyle"]["post"]["responses"]
    plain = create_app(generator=untrained_gan_sampler()).openapi()
    assert restyle_parameters(plain)["method"]["schema"]["enum"] == ["restyle"]


def test_info_lists_the_translators(client):
    info = client.get("/api/info").json()
    assert info["restyle_methods"] == ["restyle", "regular", "shift"]
    assert info["translators"] == [
        {"method": "regular", "scope": "pair", "pair": [1, 7], "targets": [7], "run": PAIR_REGULAR},
        {"method": "shift", "scope": "pair", "pair": [4, 9], "targets": [9, 4], "run": PAIR_SHIFT},
        {
            "method": "shift",
            "scope": "all",
            "pair": None,
            "targets": list(range(10)),
            "run": ALL_SHIFT,
        },
    ]


def test_without_a_method_restyles_as_before(client, web_cgan_run, mnist_digits):
    seven = upload(mnist_digits[7])
    query = "digit=3&source_digit=7&format=json&seed=5"
    default = client.post(f"/api/restyle?{query}", files=seven).json()
    named = client.post(f"/api/restyle?{query}&method=restyle", files=seven).json()
    plain_app = create_app(web_cgan_run, classifier=StandInClassifier(), restyle_processes=False)
    with TestClient(plain_app) as plain:
        before = plain.post(f"/api/restyle?{query}", files=seven).json()
    assert default == named == before
    assert default["method"] == "restyle" and default["code_error"] >= 0
    assert "translators" not in default


def test_a_run_that_cannot_restyle_offers_its_translators(translators_dir, mnist_digits):
    """An unconditional run has no restyle of its own; its translators still redraw digits."""
    app = create_app(
        generator=untrained_gan_sampler(conditional=False), translators_dir=translators_dir
    )
    parameters = restyle_parameters(app.openapi())
    assert parameters["method"]["schema"]["enum"] == ["regular", "shift"]
    assert parameters["method"]["required"] is True
    assert parameters["source_digit"]["required"] is True  # no classifier
    with TestClient(app) as plain:
        four = upload(mnist_digits[4])
        ok = plain.post("/api/restyle?method=shift&digit=9&source_digit=4&format=json", files=four)
        assert ok.status_code == 200 and ok.json()["translators"] == [PAIR_SHIFT]
        assert_error(plain.post("/api/restyle?source_digit=4", files=four), 400)


def test_restyle_keeps_its_schema_with_translators(translators_dir, monkeypatch):
    """schemathesis over /api/restyle with translators served: a request the schema allows
    gets a documented answer (a pair no translator covers is a 404, not a 400)."""
    schemathesis = pytest.importorskip("schemathesis", reason="the dev extra is not installed")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from web_stand_ins import digit_pictures

    monkeypatch.setattr(service, "RESTYLE_STEPS", 3)  # an untrained run: Adam alone
    monkeypatch.setattr(service, "RESTYLE_RESTARTS", 1)
    for media_type in ("image/png", "image/jpeg"):
        schemathesis.openapi.media_type(media_type, digit_pictures())
    app = create_app(
        generator=untrained_gan_sampler(),
        classifier=StandInClassifier(),
        translators_dir=translators_dir,
        allowed_hosts=[*LOOPBACK_HOSTS, "testserver"],
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.checks.update(included_check_names=["all"])
    operation = schema["/api/restyle"]["POST"]
    cases = st.one_of(operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=cases)
    @settings(
        max_examples=40, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
    )
    def keeps_the_schema(case):
        case.call_and_validate()

    keeps_the_schema()


# --- finding translator runs -----------------------------------------------------------------


def test_a_damaged_translator_run_is_skipped(translators_dir, tmp_path, capsys, mnist_digits):
    root = shutil.copytree(translators_dir, tmp_path / "translators")
    (root / "pair-4-9" / "shift" / "class_means.safetensors").write_bytes(b"torn")
    (root / "all" / "shift" / "config.json").write_text("{not json")
    (root / "notes").mkdir()
    (root / "notes" / "todo.txt").write_text("not a run")
    app = create_app(generator=untrained_gan_sampler(), translators_dir=root)
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"zspace serve: skipping the translator run {ALL_SHIFT}: ")
    assert warnings[1].startswith(f"zspace serve: skipping the translator run {PAIR_SHIFT}: ")
    assert app.state.info["restyle_methods"] == ["restyle", "regular"]
    with TestClient(app) as damaged:
        one = upload(mnist_digits[1])
        ok = damaged.post("/api/restyle?method=regular&digit=7&source_digit=1", files=one)
        assert ok.status_code == 200
        assert_error(damaged.post("/api/restyle?method=shift", files=one), 400, "shift")


def test_translators_beside_the_run_and_in_its_study(
    web_cgan_run, translators_dir, small_ae_run, mnist_dir, tmp_path, capsys
):
    """Found in the served run's folder and in its study's translation folder (restyle-method
    runs aside: `method=restyle` is the served run's own); --translators DIR replaces both."""
    study = tmp_path / "study"
    RunDir(study).write_config(STUDY, {})
    served = shutil.copytree(web_cgan_run, study / "cgan")
    shutil.copytree(
        translators_dir / "pair-4-9" / "shift", study / "translation" / "pair-4-9" / "shift"
    )
    shutil.copytree(translators_dir / "pair-1-7" / "regular", served / "translators" / "regular")
    restyle_run = study / "translation" / "pair-4-9" / "restyle"
    train(restyle_run, "restyle", 4, 9, small_ae_run, mnist_dir, generator_run=web_cgan_run)
    capsys.readouterr()

    info = create_app(served, restyle_processes=False).state.info
    runs = [(t["method"], t["run"]) for t in info["translators"]]
    assert runs == [
        ("regular", "cgan/translators/regular"),
        ("shift", "translation/pair-4-9/shift"),
    ]
    assert capsys.readouterr().err == ""

    elsewhere = create_app(served, restyle_processes=False, translators_dir=translators_dir)
    assert {t["run"] for t in elsewhere.state.info["translators"]} == {
        PAIR_SHIFT,
        ALL_SHIFT,
        PAIR_REGULAR,
    }
    with pytest.raises(ZspaceError, match="does not exist"):
        create_app(served, restyle_processes=False, translators_dir=tmp_path / "missing")


def test_serve_takes_a_translators_folder(web_cgan_run, translators_dir, monkeypatch, capsys):
    """`zspace serve RUN --translators DIR`, up to handing the app to uvicorn."""
    import uvicorn

    from zspace.cli.main import main

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    assert main(["serve", str(web_cgan_run), "--translators", str(translators_dir)]) == 0
    assert served[0].state.info["restyle_methods"] == ["restyle", "regular", "shift"]
    assert "3 translator run(s) found; /api/restyle methods: restyle, regular, shift" in (
        capsys.readouterr().out
    )
