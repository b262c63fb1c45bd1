"""The web API through FastAPI's test client: every endpoint, and every kind of bad input."""

from __future__ import annotations

import io
import shutil
import time

import pytest
import torch
from PIL import Image

fastapi = pytest.importorskip("fastapi", reason="the web extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402
from web_stand_ins import StandInClassifier  # noqa: E402

from zspace.runs import GMM_BASELINE  # noqa: E402
from zspace.sampling.sampler import MAX_SEED  # noqa: E402
from zspace.web.app import create_app  # noqa: E402
from zspace.web.imaging import MAX_UPLOAD_BYTES  # noqa: E402


@pytest.fixture(scope="module")
def client(web_cgan_run):
    with TestClient(create_app(web_cgan_run, classifier=StandInClassifier())) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def no_classifier_client(web_cgan_run):
    with TestClient(create_app(web_cgan_run)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def digit_png(mnist_dir) -> bytes:
    """A real MNIST test digit (a 7) as PNG bytes."""
    from zspace.data import load_dataset

    dataset = load_dataset("mnist", data_dir=mnist_dir)
    index = int((dataset.test_labels == 7).nonzero()[0])
    buffer = io.BytesIO()
    Image.fromarray(dataset.test_images[index].numpy(), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def png_size(content: bytes) -> tuple[int, int]:
    picture = Image.open(io.BytesIO(content))
    assert picture.format == "PNG"
    return picture.size


def assert_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    for word in words:
        assert word in message, message
    return message


# --- endpoints -------------------------------------------------------------------------------


def test_health_and_info(client, web_cgan_run):
    health = client.get("/api/health").json()
    assert health == {"status": "ok", "generator": True, "conditional": True, "classifier": True}
    info = client.get("/api/info").json()
    assert info["config"]["kind"] == "latent-gan"
    assert info["conditional"] is True
    assert info["metrics"]["epoch"] == 2
    assert info["limits"]["n"] == [1, 256]
    assert info["inverter"] is True  # the fixture run was trained with inverter_steps
    # folder names only: nothing says where the runs are on the server's disk
    assert info["run"] == web_cgan_run.name
    assert info["config"]["autoencoder"]["source"] == "run"
    assert str(web_cgan_run.parent) not in client.get("/api/info").text


def test_generate_png_grid_is_deterministic(client):
    first = client.get("/api/generate", params={"digit": 7, "n": 16, "seed": 3})
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/png"
    # 4 x 4 tiles of 28 px with 2 px padding, scaled by 2
    assert png_size(first.content) == ((4 * 30 + 2) * 2, (4 * 30 + 2) * 2)
    again = client.get("/api/generate?digit=7&n=16&seed=3")
    other = client.get("/api/generate?digit=7&n=16&seed=4")
    assert again.content == first.content
    assert other.content != first.content


def test_generate_json(client):
    body = client.get("/api/generate?digit=2&n=5&seed=1&format=json&scale=1").json()
    assert body["labels"] == [2] * 5 and body["n"] == 5 and body["seed"] == 1
    assert len(body["images"]) == 5
    assert body["images"][0].startswith("data:image/png;base64,")
    import base64

    tile = base64.b64decode(body["images"][0].split(",", 1)[1])
    assert png_size(tile) == (28, 28)


def test_generate_every_digit_gives_one_row_each(client):
    response = client.get("/api/generate?n=3&scale=1")
    assert response.status_code == 200
    assert png_size(response.content) == (3 * 30 + 2, 10 * 30 + 2)
    body = client.get("/api/generate?n=2&format=json").json()
    assert body["labels"] == [d for d in range(10) for _ in range(2)]


def test_largest_requests(client):
    assert client.get("/api/generate?digit=0&n=256&seed=12345").status_code == 200
    assert client.get("/api/generate?n=256&scale=1").status_code == 200
    response = client.get("/api/interpolate?from_digit=1&to_digit=9&steps=64")
    assert response.status_code == 200


def test_largest_seed(client):
    assert client.get(f"/api/generate?digit=0&n=2&seed={MAX_SEED}").status_code == 200
    response = client.get(f"/api/interpolate?from_digit=1&seed={MAX_SEED}&to_seed=0")
    assert response.status_code == 200


def test_interpolate_between_digits(client, web_cgan_run):
    import zspace
    from zspace.web.imaging import image_data_urls

    query = "from_digit=3&to_digit=8&seed=5&steps=7&scale=1"
    body = client.get(f"/api/interpolate?{query}&format=json").json()
    assert len(body["images"]) == 7 and body["space"] == "gan"
    frames = client.get(f"/api/interpolate?{query}")
    assert png_size(frames.content) == (7 * 30 + 2, 32)
    # the ends are the seed's noise generated as a 3 and as an 8
    sampler = zspace.load(web_cgan_run)
    noise = sampler.noise(1, 5).repeat(2, 1)
    ends = image_data_urls(sampler.images(noise, torch.tensor([3, 8])))
    assert [body["images"][0], body["images"][-1]] == ends
    same = client.get("/api/interpolate?from_digit=3&seed=5&steps=3&format=json").json()
    assert len(set(same["images"])) == 1


def test_interpolate_between_seeds_in_both_spaces(client):
    for space in ("gan", "ae"):
        body = client.get(
            f"/api/interpolate?from_digit=4&seed=1&to_seed=2&steps=5&space={space}&format=json"
        ).json()
        assert body["to_digit"] == 4 and body["to_seed"] == 2 and len(body["images"]) == 5
        assert body["images"][0] != body["images"][-1]
    gan = client.get("/api/interpolate?from_digit=4&seed=1&to_seed=2&steps=5&format=json")
    ae = client.get("/api/interpolate?from_digit=4&seed=1&to_seed=2&steps=5&space=ae&format=json")
    # both paths start and end at the same two samples but differ in between
    assert gan.json()["images"][2] != ae.json()["images"][2]


def test_classify_upload_as_multipart_and_raw_body(client, digit_png):
    multipart = client.post("/api/classify", files={"image": ("d.png", digit_png, "image/png")})
    assert multipart.status_code == 200, multipart.text
    body = multipart.json()
    assert 0 <= body["digit"] <= 9
    assert len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1, abs=1e-4)
    assert body["inverted"] is False
    raw = client.post("/api/classify", content=digit_png, headers={"content-type": "image/png"})
    assert raw.json() == body


def test_classify_dark_on_light_upload(client, digit_png):
    picture = Image.open(io.BytesIO(digit_png))
    buffer = io.BytesIO()
    Image.eval(picture, lambda v: 255 - v).convert("RGB").save(buffer, format="JPEG")
    body = client.post("/api/classify", files={"image": ("d.jpg", buffer.getvalue())}).json()
    assert body["inverted"] is True


def test_restyle_as_every_digit_and_one_digit(client, digit_png):
    files = {"image": ("d.png", digit_png, "image/png")}
    body = client.post("/api/restyle?format=json&scale=1", files=files).json()
    assert body["digits"] == list(range(10)) and len(body["images"]) == 10
    assert body["source"] == "classifier" and len(body["probabilities"]) == 10
    assert body["code_error"] >= 0 and body["reconstruction"].startswith("data:image/png")
    one = client.post("/api/restyle?digit=3&source_digit=7&scale=1", files=files)
    assert one.headers["content-type"] == "image/png"
    assert png_size(one.content) == (32, 32)
    named = client.post("/api/restyle?digit=3&source_digit=7&format=json", files=files).json()
    assert named["source"] == "request" and named["source_digit"] == 7
    assert named["probabilities"] is None


def test_without_a_classifier(no_classifier_client, digit_png):
    files = {"image": ("d.png", digit_png, "image/png")}
    assert no_classifier_client.get("/api/health").json()["classifier"] is False
    assert_error(no_classifier_client.post("/api/classify", files=files), 503, "classifier")
    # The schema requires source_digit when no classifier is loaded: leaving it out is the
    # request's mistake (400), not the server's (5xx).
    assert_error(no_classifier_client.post("/api/restyle", files=files), 400, "source_digit")
    # with the digit given, restyling needs no classifier
    ok = no_classifier_client.post("/api/restyle?source_digit=7&format=json", files=files)
    assert ok.status_code == 200 and ok.json()["source"] == "request"


def test_page_docs_and_schema_are_served_without_external_resources(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/docs.js"):
        assert client.get(asset).status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    for text in (page.text, docs.text, client.get("/static/app.js").text):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/generate",
        "/api/interpolate",
        "/api/classify",
        "/api/restyle",
        "/api/health",
        "/api/info",
    ):
        assert path in schema["paths"]
    assert (
        "multipart/form-data" in schema["paths"]["/api/classify"]["post"]["requestBody"]["content"]
    )


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, name",
    [
        ("digit=10", "digit"),
        ("digit=-1", "digit"),
        ("digit=seven", "digit"),
        ("digit=7.5", "digit"),
        ("n=0", "n"),
        ("n=257", "n"),
        ("n=lots", "n"),
        ("seed=-1", "seed"),
        (f"seed={2**63}", "seed"),
        ("seed=1e400", "seed"),
        ("scale=9", "scale"),
        ("format=gif", "format"),
    ],
)
def test_generate_rejects_bad_parameters(client, query, name):
    assert_error(client.get(f"/api/generate?{query}"), 422, name)


@pytest.mark.parametrize(
    "query, status, name",
    [
        ("from_digit=3&steps=1", 422, "steps"),
        ("from_digit=3&steps=65", 422, "steps"),
        ("from_digit=3&to_digit=12", 422, "to_digit"),
        ("from_digit=3&space=pixels", 422, "space"),
        (f"from_digit=3&to_seed={2**64}", 422, "to_seed"),
        ("to_digit=3", 400, "from_digit"),  # a conditional run needs a start digit
    ],
)
def test_interpolate_rejects_bad_parameters(client, query, status, name):
    assert_error(client.get(f"/api/interpolate?{query}"), status, name)


def _png_of_size(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


@pytest.mark.parametrize("endpoint", ["/api/classify", "/api/restyle?source_digit=1"])
def test_uploads_are_checked(client, endpoint):
    post = client.post
    assert_error(post(endpoint, content=b"", headers={"content-type": "image/png"}), 400, "empty")
    assert_error(post(endpoint, files={"image": ("x.png", b"not an image at all")}), 400, "image")
    too_big = b"\x89PNG" + bytes(MAX_UPLOAD_BYTES)
    assert_error(post(endpoint, files={"image": ("x.png", too_big)}), 413, "1 MB")
    assert_error(post(endpoint, content=too_big, headers={"content-type": "image/png"}), 413)
    # a small file that claims a gigapixel image is refused before decoding
    assert_error(
        post(endpoint, files={"image": ("x.png", _png_of_size(20_000, 20_000))}), 400, "pixels"
    )
    assert_error(post(endpoint, data={"image": "a url-encoded form"}), 400, "multipart")
    assert_error(post(endpoint, files={"note": (None, "no file")}), 400, "no file")
    assert_error(post(endpoint, files={"image": (None, "text, not a file")}), 400, "file")
    broken = post(
        endpoint,
        content=b"--x\r\nnonsense",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert 400 <= broken.status_code < 500 and "error" in broken.json()


def test_restyle_rejects_bad_digits(client, digit_png):
    files = {"image": ("d.png", digit_png)}
    assert_error(client.post("/api/restyle?digit=10", files=files), 422, "digit")
    assert_error(client.post("/api/restyle?source_digit=x", files=files), 422, "source_digit")


def test_unknown_paths_and_methods_answer_json(client):
    assert_error(client.get("/api/nothing"), 404)
    assert_error(client.post("/api/generate"), 405)
    assert_error(client.get("/api/classify"), 405)
    assert client.post("/api/generate").headers["allow"] == "GET"  # RFC 9110


# --- other runs and failure modes ---------------------------------------------------------------


class SlowSampler:
    """Wraps a sampler and makes generation slow, to check that requests time out."""

    def __init__(self, sampler, delay: float):
        self.sampler, self.delay = sampler, delay
        self.kind, self.has_noise = sampler.kind, sampler.has_noise
        self.conditional, self.autoencoder = sampler.conditional, sampler.autoencoder

    def sample_with_labels(self, **kwargs):
        time.sleep(self.delay)
        return self.sampler.sample_with_labels(**kwargs)


def test_slow_inference_times_out_with_503(web_cgan_run):
    import zspace

    slow = SlowSampler(zspace.load(web_cgan_run), delay=1.0)
    with TestClient(create_app(generator=slow, inference_timeout=0.2)) as slow_client:
        assert_error(slow_client.get("/api/generate?digit=1&n=1"), 503, "0.2 s")
        assert slow_client.get("/api/health").status_code == 200


def test_unconditional_run(small_ae_run, mnist_dir, tmp_path, digit_png):
    from zspace.models.gan import config_for_preset
    from zspace.training.gan import GANTrainingConfig, train_gan

    sampler = train_gan(
        tmp_path / "gan",
        config_for_preset("reference", data_dim=64, conditional=False),
        GANTrainingConfig.for_preset("reference", limit=500, epochs=1, inverter_steps=0),
        ae_run=small_ae_run,
        data_dir=mnist_dir,
        device="cpu",
        progress=False,
    )
    with TestClient(create_app(generator=sampler)) as plain:
        assert plain.get("/api/health").json()["conditional"] is False
        assert plain.get("/api/generate?n=4").status_code == 200
        assert_error(plain.get("/api/generate?digit=3"), 400, "unconditional")
        assert plain.get("/api/interpolate?seed=1&to_seed=2&steps=4").status_code == 200
        assert_error(plain.get("/api/interpolate?from_digit=1"), 400, "unconditional")
        restyle = plain.post("/api/restyle?source_digit=7", content=digit_png)
        assert_error(restyle, 400, "conditional")
        # the schema offers only what this run answers: no digits, no restyles
        paths = plain.get("/openapi.json").json()["paths"]
        assert "/api/restyle" not in paths and "/api/classify" not in paths
        names = {p["name"] for p in paths["/api/interpolate"]["get"]["parameters"]}
        assert "from_digit" not in names and "seed" in names


def test_create_app_needs_a_sampler_run(small_ae_run, tmp_path):
    from zspace.errors import ZspaceError

    with pytest.raises(ZspaceError, match="kind autoencoder, which cannot be served") as refused:
        create_app(small_ae_run)
    assert "\n" not in str(refused.value) and "gmm-baseline" in str(refused.value)
    with pytest.raises(ZspaceError, match="does not exist"):
        create_app(tmp_path / "missing")


@pytest.fixture(scope="module")
def gmm_run(small_ae_run, mnist_dir, tmp_path_factory):
    """A gmm-baseline run (two Gaussians per digit over 2,000 codes of `small_ae_run`)."""
    from zspace.evaluation.gmm import fit_gmm_baseline

    out = tmp_path_factory.mktemp("gmm") / "run"
    fit_gmm_baseline(small_ae_run, out, components=2, data_dir=mnist_dir, limit=2000)
    return out


def test_a_gmm_baseline_run_is_served_without_noise_operations(gmm_run, digit_png):
    """A sampler without noise: samples and code-space morphs work; noise-space operations
    (noise paths, restyles) answer one line, without starting a restyle worker."""
    app = create_app(gmm_run)
    assert not app.state.lanes.restyles.in_processes
    with TestClient(app) as gmm:
        assert gmm.get("/api/info").json()["config"]["kind"] == GMM_BASELINE
        paths = gmm.get("/openapi.json").json()["paths"]
        assert "/api/restyle" not in paths
        space = next(
            p for p in paths["/api/interpolate"]["get"]["parameters"] if p["name"] == "space"
        )
        assert space["schema"]["enum"] == ["ae"]
        grid = gmm.get("/api/generate?digit=4&n=9&seed=2&scale=1")
        assert grid.status_code == 200 and png_size(grid.content) == (3 * 30 + 2, 3 * 30 + 2)
        assert gmm.get("/api/generate?digit=4&n=9&seed=2&scale=1").content == grid.content
        body = gmm.get("/api/generate?n=2&format=json").json()
        assert body["labels"] == [d for d in range(10) for _ in range(2)]
        morph = gmm.get("/api/interpolate?from_digit=1&to_digit=7&steps=5&space=ae&format=json")
        assert morph.status_code == 200 and len(morph.json()["images"]) == 5
        # without a noise space, morphs walk the codes by default
        default = gmm.get("/api/interpolate?from_digit=1&to_digit=7&steps=5&format=json")
        assert default.status_code == 200 and default.json()["space"] == "ae"
        noise_path = gmm.get("/api/interpolate?from_digit=1&to_digit=7&space=gan")
        message = assert_error(noise_path, 400, "gmm-baseline", "no noise space", "space=ae")
        assert "\n" not in message
        files = {"image": ("d.png", digit_png, "image/png")}
        for query in ("source_digit=7", "digit=3&source_digit=7&format=json"):
            restyle = gmm.post(f"/api/restyle?{query}", files=files)
            message = assert_error(restyle, 400, "gmm-baseline", "no noise space", "restyle")
            assert "\n" not in message
        # refused before the upload is read: even an empty one gets the same line
        assert_error(gmm.post("/api/restyle", content=b""), 400, "no noise space")


def test_with_a_saved_classifier_run(web_cgan_run, tmp_path, digit_png):
    """A real (untrained) few-shot classifier run, found inside the GAN run or named."""
    classify = pytest.importorskip("zspace.fewshot.classify")
    from zspace.fewshot.cnn import DigitCNN, DigitCNNConfig

    torch.manual_seed(0)
    run = tmp_path / "gan"
    shutil.copytree(web_cgan_run, run)
    classify.save_classifier(run / "classifier", DigitCNN(DigitCNNConfig()), {"note": "test"})
    files = {"image": ("d.png", digit_png, "image/png")}
    for app in (create_app(run), create_app(web_cgan_run, classifier_dir=run / "classifier")):
        with TestClient(app) as with_classifier:
            assert with_classifier.get("/api/health").json()["classifier"] is True
            info = with_classifier.get("/api/info").json()
            assert info["classifier"]["config"]["kind"] == "classifier"
            body = with_classifier.post("/api/classify", files=files).json()
            assert len(body["probabilities"]) == 10 and body["inverted"] is False
            restyled = with_classifier.post("/api/restyle?format=json", files=files).json()
            assert restyled["source"] == "classifier" and len(restyled["images"]) == 10
    blank = _png_of_size(28, 28)
    assert_error(TestClient(create_app(run)).post("/api/classify", content=blank), 400)
