"""The web API keeps its own OpenAPI contract: schemathesis, every endpoint, every check.

What `schemathesis run /openapi.json --checks all` does against a live server, in-process and
small enough for CI: the app serves an untrained GAN (no MNIST needed) with the stand-in
classifier. Uploads that the schema allows are pictures of a digit (web_stand_ins.digit_pictures,
registered for the image media types): JSON Schema cannot say "not blank" or "decodes as PNG",
so that is what a schema-valid upload means here; other bytes are negative data, which the
server must refuse with a 4xx.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the dev extra is not installed")
pytest.importorskip("fastapi", reason="the web extra is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402
from web_stand_ins import StandInClassifier, digit_pictures, untrained_gan_sampler  # noqa: E402

from zspace.web import service  # noqa: E402
from zspace.web.app import LOOPBACK_HOSTS, create_app  # noqa: E402

for media_type in ("image/png", "image/jpeg"):
    schemathesis.openapi.media_type(media_type, digit_pictures())

app = create_app(
    generator=untrained_gan_sampler(),
    classifier=StandInClassifier(),
    allowed_hosts=[*LOOPBACK_HOSTS, "testserver"],  # the name the ASGI test client sends
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
schema.config.checks.update(included_check_names=["all"])  # as --checks all


@pytest.fixture(autouse=True)
def quick_restyles(monkeypatch):
    # An untrained run has no noise inverter, so each restyle is a full Adam search (about a
    # second here); a few steps exercise the same code.
    monkeypatch.setattr(service, "RESTYLE_STEPS", 3)
    monkeypatch.setattr(service, "RESTYLE_RESTARTS", 1)


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_endpoint_keeps_the_schema(case):
    case.call_and_validate()
