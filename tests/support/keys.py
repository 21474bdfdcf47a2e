"""Service account keys for tests, as the console hands them out: a fresh RSA key (never
used anywhere else) whose tokens come from `token_uri`, where google-auth signs a real JWT
and exchanges it."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def service_account_info(email: str, *, token_uri: str = GOOGLE_TOKEN_URI) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": email.partition("@")[2].split(".")[0],
        "private_key_id": "1",
        "private_key": pem,
        "client_email": email,
        "client_id": "1",
        "token_uri": token_uri,
    }
