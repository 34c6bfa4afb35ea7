"""Secrets: AES-GCM at rest, names only in listings, clear errors for a wrong key."""

import base64
import os
import stat

import pytest
from sqlalchemy import select

from conv3n.errors import InvalidInput, SecretNotFound
from conv3n.storage import secrets, tables


@pytest.fixture
def cipher():
    return secrets.Cipher(os.urandom(32))


async def test_values_are_encrypted_at_rest(db, cipher):
    assert await secrets.put(db, cipher, "stripe_key", "sk_live_abcdef") is True
    async with db.read() as conn:
        row = (await conn.execute(select(tables.secrets))).one()
    assert "sk_live_abcdef" not in repr(row)
    assert b"sk_live_abcdef" not in base64.b64decode(row.ciphertext)
    assert await secrets.load_all(db, cipher) == {"stripe_key": "sk_live_abcdef"}


async def test_replacing_a_secret_keeps_one_row_and_new_value(db, cipher):
    await secrets.put(db, cipher, "k", "one")
    assert await secrets.put(db, cipher, "k", "two") is False
    assert await secrets.load_all(db, cipher) == {"k": "two"}
    assert [n["name"] for n in await secrets.names(db)] == ["k"]


async def test_listing_shows_names_never_values(db, cipher):
    await secrets.put(db, cipher, "b_token", "value-b")
    await secrets.put(db, cipher, "a_token", "value-a")
    listed = await secrets.names(db)
    assert [n["name"] for n in listed] == ["a_token", "b_token"]
    assert "value" not in repr(listed)


async def test_a_wrong_key_fails_with_a_clear_error(db, cipher):
    await secrets.put(db, cipher, "k", "v")
    with pytest.raises(InvalidInput, match="wrong CONV3N_SECRET_KEY"):
        await secrets.load_all(db, secrets.Cipher(os.urandom(32)))


async def test_a_ciphertext_moved_to_another_name_does_not_decrypt(db, cipher):
    await secrets.put(db, cipher, "a", "value")
    nonce, sealed = cipher.encrypt("a", "value")
    with pytest.raises(InvalidInput):
        cipher.decrypt("b", nonce, sealed)


@pytest.mark.parametrize("name", ["", "1abc", "has-dash", "a b", "x" * 129, "ünï"])
async def test_bad_names_are_refused(db, cipher, name):
    with pytest.raises(InvalidInput, match="secret name"):
        await secrets.put(db, cipher, name, "v")


async def test_huge_values_are_refused(db, cipher):
    with pytest.raises(InvalidInput, match="at most"):
        await secrets.put(db, cipher, "big", "x" * (secrets.MAX_VALUE_BYTES + 1))


async def test_delete_and_missing(db, cipher):
    await secrets.put(db, cipher, "k", "v")
    await secrets.remove(db, "k")
    with pytest.raises(SecretNotFound):
        await secrets.remove(db, "k")


def test_generated_key_file_is_private_and_stable(tmp_path):
    path = tmp_path / "data" / "secret.key"
    key = secrets.load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.load_or_create_key(path) == key


@pytest.mark.parametrize("text", ["not base64!!", base64.b64encode(b"short").decode()])
def test_bad_configured_keys_are_refused(text):
    with pytest.raises(InvalidInput, match="CONV3N_SECRET_KEY"):
        secrets.decode_key(text)
