"""What a schema-valid upload is, for `schemathesis run` against a live `zspace serve`.

JSON Schema cannot say "a PNG that decodes to a digit, not a blank page", so schemathesis
would take any bytes for a valid `image/png` body and count the server's 400 as a broken
contract. schemathesis.toml (at the repository root) loads this module, which registers
pictures of digits for the image media types; other bytes stay negative data, which the
server must refuse with a 4xx. tests/unit/test_api_contract.py registers the same in-process.
"""

from __future__ import annotations

import sys
from pathlib import Path

import schemathesis

sys.path.insert(0, str(Path(__file__).parent))
from web_stand_ins import digit_pictures  # noqa: E402

for media_type in ("image/png", "image/jpeg"):
    schemathesis.openapi.media_type(media_type, digit_pictures())
