"""Standard Webhooks signatures: the published example vector, staleness, rotation, tampering."""

import pytest

from conv3n.api import signatures
from conv3n.errors import InvalidInput, Unauthorized

# the example of the Standard Webhooks specification (and svix's documentation)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MESSAGE = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = EXPECTED, stamp: int = STAMP) -> dict[str, str]:
    return {"webhook-id": MESSAGE, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def test_the_specification_example_signs_and_verifies():
    assert signatures.sign(SECRET, MESSAGE, STAMP, BODY) == EXPECTED
    assert signatures.verify(SECRET, headers(), BODY, now=STAMP + 10) == MESSAGE


def test_any_of_several_signatures_may_match_so_keys_can_rotate():
    rotated = f"v1,bm90LXRoaXMtb25l {EXPECTED}"
    assert signatures.verify(SECRET, headers(rotated), BODY, now=STAMP) == MESSAGE


@pytest.mark.parametrize("body", [b'{"test": 2432232315}', b"", BODY + b" "])
def test_a_tampered_body_is_refused(body):
    with pytest.raises(Unauthorized, match="no webhook-signature matches"):
        signatures.verify(SECRET, headers(), body, now=STAMP)


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_stale_or_future_timestamps_are_refused(skew):
    with pytest.raises(Unauthorized, match="5 minutes"):
        signatures.verify(SECRET, headers(), BODY, now=STAMP + skew)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_every_header_is_required(missing):
    given = headers()
    del given[missing]
    with pytest.raises(Unauthorized, match="required"):
        signatures.verify(SECRET, given, BODY, now=STAMP)


def test_a_non_numeric_timestamp_is_refused():
    given = {**headers(), "webhook-timestamp": "yesterday"}
    with pytest.raises(Unauthorized, match="whole seconds"):
        signatures.verify(SECRET, given, BODY, now=STAMP)


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!"])
def test_malformed_secrets_are_refused(secret):
    with pytest.raises(InvalidInput, match="whsec_"):
        signatures.secret_key(secret)
