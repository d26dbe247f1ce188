"""Test plugin: stands in for ``pulumi-resource-tls`` 5.6.2, resource ``PrivateKey``.

pulumi-tls bridges hashicorp/terraform-provider-tls. The rules, read in its
``internal/provider/resource_private_key.go``, ``common_key.go`` and ``common.go``, beside the
shared ones of ``generated.py`` (G1-G5):

T1  ``algorithm`` is required; ``rsaBits`` defaults to 2048, ``ecdsaCurve`` to ``P224``; every
    attribute is ``RequiresReplace`` (G2).
T2  ED25519 (``Create``): ``privateKeyPem`` is the PKCS#8 ``PRIVATE KEY`` block,
    ``privateKeyPemPkcs8`` the same, ``privateKeyOpenssh`` the OpenSSH block
    (``ssh.MarshalPrivateKey``). RSA: ``privateKeyPem`` is the PKCS#1 ``RSA PRIVATE KEY`` block of
    ``rsaBits``. ``privateKeyPem``, ``privateKeyOpenssh`` and ``privateKeyPemPkcs8`` are
    ``Sensitive``: secret in the state.
T3  Public attributes (``setPublicKeyAttributes``): ``publicKeyPem`` is the PKIX ``PUBLIC KEY``
    block; ``publicKeyOpenssh`` the authorized-keys line with its newline
    (``ssh.MarshalAuthorizedKey``); ``publicKeyFingerprintMd5`` colon-separated hex,
    ``publicKeyFingerprintSha256`` ``SHA256:`` and unpadded base64; the id is the hex SHA-1 of
    the PKIX bytes with surrounding white space trimmed (``hashForState``).

Not modelled, because the program does not use them: ECDSA keys, the other resources.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.plugins import serving
from tests.plugins.generated import GeneratedResourceProvider
from tests.plugins.install import pinned_versions

PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()


def private_key_attributes(inputs: dict[str, Any]) -> dict[str, Any]:
    """T2: the private key's three texts, and the key."""
    algorithm = inputs["algorithm"]
    if algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD)
    elif algorithm == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs["rsaBits"]))
        pem = key.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_PASSWORD)
    else:
        raise ValueError(f"the tls test plugin models ED25519 and RSA keys, not {algorithm!r}")
    return {
        "key": key,
        "privateKeyPem": pem.decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, NO_PASSWORD
        ).decode(),
        "privateKeyOpenssh": key.private_bytes(
            PEM, serialization.PrivateFormat.OpenSSH, NO_PASSWORD
        ).decode(),
    }


def public_key_attributes(public_key) -> tuple[str, dict[str, str]]:
    """T3: the id and the public attributes."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    openssh = public_key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    blob = base64.b64decode(openssh.split()[1])
    md5 = hashlib.md5(blob).hexdigest()  # noqa: S324  (the legacy fingerprint is MD5)
    resource_id = hashlib.sha1(der.strip()).hexdigest()  # noqa: S324  (as hashForState)
    return (
        resource_id,
        {
            "publicKeyPem": public_key.public_bytes(
                PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": openssh + "\n",
            "publicKeyFingerprintMd5": ":".join(md5[i : i + 2] for i in range(0, 32, 2)),
            "publicKeyFingerprintSha256": "SHA256:"
            + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="),
        },
    )


class PrivateKeyProvider(GeneratedResourceProvider):
    TYPE = "tls:index/privateKey:PrivateKey"
    DEFAULTS: ClassVar[dict[str, Any]] = {"rsaBits": 2048, "ecdsaCurve": "P224"}
    REQUIRED = ("algorithm",)
    SECRET_OUTPUTS = ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8")
    OUTPUTS = (
        *SECRET_OUTPUTS,
        "publicKeyPem",
        "publicKeyOpenssh",
        "publicKeyFingerprintMd5",
        "publicKeyFingerprintSha256",
    )

    def generate(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        private = private_key_attributes(inputs)
        resource_id, public = public_key_attributes(private.pop("key").public_key())
        return resource_id, {**private, **public}


if __name__ == "__main__":
    serving.serve("tls", pinned_versions()["tls"], PrivateKeyProvider())
