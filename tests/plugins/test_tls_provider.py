"""Conformance of the tls test plugin: rules T1-T3 (``tls_provider.py``) and G2-G4, through the
real engine, with OpenSSH's own ``ssh-keygen`` as the judge of the key texts."""

from __future__ import annotations

import hashlib
import json
import subprocess

import paramiko
import pulumi
import pulumi_tls as tls
import pytest
from cryptography.hazmat.primitives import serialization

from local.box import load_private_key

SECRET_SIG = "4dabf18193072939515e22adb298388d"


@pytest.fixture
def keys(tiny_stack):
    def make(spec: dict[str, dict]):
        def program() -> None:
            for name, kwargs in spec.items():
                key = tls.PrivateKey(name, **kwargs)
                key.public_key_openssh.apply(lambda v, n=name: pulumi.log.info(f"{n} known"))

        return tiny_stack(program)

    return make


def revealed(stack, name: str) -> dict:
    outputs = stack.resource(name, show_secrets=True)["outputs"]
    return {
        k: json.loads(v["plaintext"]) if isinstance(v, dict) and SECRET_SIG in v else v
        for k, v in outputs.items()
    }


def keygen(*args: str, stdin: str) -> str:
    return subprocess.run(
        ["ssh-keygen", *args], input=stdin, capture_output=True, text=True, check=True
    ).stdout


def test_t1_defaults_and_g3_preview_leaves_keys_unknown(keys):
    stack = keys({"k": {"algorithm": "ED25519"}})
    preview = stack.preview()
    assert not [d for d in preview.diagnostics if "k known" in d.message]
    stack.up()
    inputs = stack.resource("k")["inputs"]
    assert (inputs["rsaBits"], inputs["ecdsaCurve"]) == (2048, "P224")


def test_t2_t3_ed25519_texts_as_openssh_reads_them(keys, tmp_path):
    stack = keys({"k": {"algorithm": "ED25519"}})
    stack.up()
    key = revealed(stack, "k")
    hidden = stack.resource("k")["outputs"]
    for name in ("privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8"):
        assert SECRET_SIG in hidden[name], name
    assert isinstance(hidden["publicKeyOpenssh"], str)
    assert key["privateKeyPem"].startswith("-----BEGIN PRIVATE KEY-----")
    assert key["privateKeyPem"] == key["privateKeyPemPkcs8"]
    # ssh-keygen derives the same public key from the OpenSSH private key.
    private_file = tmp_path / "id"
    private_file.write_text(key["privateKeyOpenssh"])
    private_file.chmod(0o600)
    derived = subprocess.run(
        ["ssh-keygen", "-y", "-f", str(private_file)], capture_output=True, text=True, check=True
    ).stdout
    assert derived.split()[:2] == key["publicKeyOpenssh"].split()
    assert key["publicKeyOpenssh"].endswith("\n")
    assert isinstance(load_private_key(key["privateKeyOpenssh"]), paramiko.Ed25519Key)
    sha = keygen("-l", "-E", "sha256", "-f", "-", stdin=key["publicKeyOpenssh"]).split()[1]
    md5 = keygen("-l", "-E", "md5", "-f", "-", stdin=key["publicKeyOpenssh"]).split()[1]
    assert key["publicKeyFingerprintSha256"] == sha
    assert "MD5:" + key["publicKeyFingerprintMd5"] == md5
    public = serialization.load_pem_public_key(key["publicKeyPem"].encode())
    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert stack.resource("k")["id"] == hashlib.sha1(der.strip()).hexdigest()  # noqa: S324


def test_t2_rsa_is_pkcs1_of_rsa_bits_and_g2_algorithm_change_replaces(keys):
    spec = {"k": {"algorithm": "RSA"}}
    stack = keys(spec)
    stack.up()
    key = revealed(stack, "k")
    assert key["privateKeyPem"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(key["privateKeyPem"].encode(), password=None)
    assert loaded.key_size == 2048
    spec["k"] = {"algorithm": "ED25519"}
    run = stack.up()
    assert [op for _, op in run.ran()] == ["create-replacement", "replace", "delete-replaced"]
