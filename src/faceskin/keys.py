"""Local signing material for content credentials: make it, find it, load it.

C2PA readers refuse a manifest signed by a self-signed certificate or by a CA
certificate, so "a key for users without one" cannot be a single certificate:
``make_signing_chain`` writes a small private PKI instead, a root CA (kept only
so that the user can hand it to a verifier as a trust anchor), an intermediate
CA and an end-entity signing certificate with the profile c2pa-rs checks
(v3, ECDSA P-256 with SHA-256, keyUsage digitalSignature only, extendedKeyUsage
documentSigning + emailProtection, subject and authority key identifiers). The
chain file holds the signing certificate followed by the intermediate, which is
what C2PA puts into the signature; the root stays out of it on purpose, since a
verifier must get its anchors from somewhere other than the file it checks.

Nothing here names the user: the subject is "faceskin local signer" plus a
random serial, because the certificate travels inside every labelled output and
must not identify the person who published it unless they choose to use their
own certificate.

Keys are written with mode 0600 in a folder with mode 0700; an existing key is
never overwritten unless ``force`` is given, because it may already have signed
published files.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import FaceskinError

#: File names inside a keys folder.
CHAIN_FILE = "signer-chain.pem"
KEY_FILE = "signer-key.pem"
ROOT_FILE = "root-ca.pem"

#: Validity of the generated certificates. The signing certificate must be
#: valid at signing time (no time-stamp authority is used offline), so it
#: lasts long enough not to surprise users; the CAs outlive it.
LEAF_DAYS = 5 * 365
CA_DAYS = 20 * 365

#: id-kp-documentSigning (RFC 9336): the EKU C2PA recommends for claim signers.
DOCUMENT_SIGNING_EKU = "1.3.6.1.5.5.7.3.36"


class SigningMaterialError(FaceskinError):
    """Signing certificate or key missing, unreadable, or unusable for C2PA."""


@dataclass(frozen=True)
class SigningMaterial:
    """PEM bytes ready for the C2PA signer.

    ``chain_pem`` starts with the end-entity certificate, followed by any
    intermediates (not the root). ``trust_anchor_pem`` is the root, when known,
    for verifiers that want to confirm their own outputs.
    """

    chain_pem: bytes
    key_pem: bytes
    trust_anchor_pem: bytes | None = None
    source: str = ""


def default_keys_dir() -> Path:
    """``$FACESKIN_KEYS_DIR``, else ``$XDG_CONFIG_HOME/faceskin/keys``, else ``~/.config/faceskin/keys``."""
    env = os.environ.get("FACESKIN_KEYS_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "faceskin" / "keys"


def make_signing_chain(
    folder: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    common_name: str = "faceskin local signer",
) -> Path:
    """Create root CA, intermediate CA and signing certificate in ``folder``; return the folder.

    Raises :class:`SigningMaterialError` if a key is already there and ``force``
    is false, so a published signer is never replaced by accident.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder) if folder is not None else default_keys_dir()
    if not force and ((folder / KEY_FILE).exists() or (folder / CHAIN_FILE).exists()):
        raise SigningMaterialError(
            f"{folder} already holds a faceskin signing key; pass --force to replace it "
            "(files signed with the old key stay verifiable)"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SigningMaterialError(f"cannot create keys folder {folder}: {exc.strerror or exc}") from None

    now = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(minutes=5)
    tag = secrets.token_hex(4)

    def name(cn: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "faceskin (self-issued)"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{cn} {tag}"),
        ])

    def ca_cert(subject, key, issuer, issuer_key, path_len):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + _dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        return builder.sign(issuer_key, hashes.SHA256())

    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name, inter_name = name("faceskin local root CA"), name("faceskin local intermediate CA")
    root = ca_cert(root_name, root_key, root_name, root_key, 1)
    inter = ca_cert(inter_name, inter_key, root_name, root_key, 0)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(common_name))
        .issuer_name(inter_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([
                x509.ObjectIdentifier(DOCUMENT_SIGNING_EKU),
                ExtendedKeyUsageOID.EMAIL_PROTECTION,
            ]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()), critical=False)
        .sign(inter_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(folder / KEY_FILE, key_pem, 0o600)
    _write_private(folder / CHAIN_FILE, leaf.public_bytes(pem) + inter.public_bytes(pem), 0o644)
    _write_private(folder / ROOT_FILE, root.public_bytes(pem), 0o644)
    # The CA keys are not kept: nothing should ever issue a second certificate
    # under this root, and a stolen CA key would let others sign as this user.
    return folder


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with the final permissions set before the file gets its name."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".faceskin-tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_signing_material(
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
    *,
    keys_dir: str | os.PathLike[str] | None = None,
) -> SigningMaterial:
    """The user's own ``cert``/``key`` when given (both or neither), else the keys folder's.

    Missing material raises :class:`SigningMaterialError` naming what to do:
    labelling is never silently skipped.
    """
    if (cert is None) != (key is None):
        raise SigningMaterialError("give both --sign-cert and --sign-key, or neither")
    anchor: bytes | None = None
    if cert is not None and key is not None:
        cert_path, key_path, source = Path(cert), Path(key), "--sign-cert/--sign-key"
    else:
        folder = Path(keys_dir) if keys_dir is not None else default_keys_dir()
        cert_path, key_path, source = folder / CHAIN_FILE, folder / KEY_FILE, str(folder)
        if not cert_path.exists() or not key_path.exists():
            raise SigningMaterialError(
                f"no signing key in {folder}: run `faceskin keys init` once, pass "
                "--sign-cert/--sign-key, or --no-label to write unlabelled outputs"
            )
        if (folder / ROOT_FILE).exists():
            anchor = _read(folder / ROOT_FILE, "root certificate")
    chain_pem, key_pem = _read(cert_path, "signing certificate"), _read(key_path, "signing key")
    _check_pair(chain_pem, key_pem, cert_path, key_path)
    return SigningMaterial(chain_pem=chain_pem, key_pem=key_pem, trust_anchor_pem=anchor, source=source)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningMaterialError(f"{what} {path} not found") from None
    except OSError as exc:
        raise SigningMaterialError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _check_pair(chain_pem: bytes, key_pem: bytes, cert_path: Path, key_path: Path) -> None:
    """Catch the usual mix-ups here, where the message can name the files, not deep inside c2pa."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        raise SigningMaterialError(f"{cert_path} is not a PEM certificate chain") from None
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise SigningMaterialError(f"{key_path} is encrypted; give an unencrypted PEM key") from None
    except ValueError:
        raise SigningMaterialError(f"{key_path} is not a PEM private key") from None
    leaf_public = certs[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if leaf_public != key_public:
        raise SigningMaterialError(f"{key_path} does not match the first certificate in {cert_path}")
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name not in _CURVE_ALG:
        raise SigningMaterialError(
            f"{key_path}: faceskin signs with ECDSA keys on P-256, P-384 or P-521 only"
        )
    if len(certs) == 1 and certs[0].issuer == certs[0].subject:
        raise SigningMaterialError(
            f"{cert_path} is a self-signed certificate, which C2PA rejects; "
            "use `faceskin keys init` or a certificate issued by a CA"
        )


def local_trust_anchor(keys_dir: str | os.PathLike[str] | None = None) -> bytes | None:
    """The root written by ``keys init`` (default folder), if any: lets verify call one's own outputs trusted."""
    folder = Path(keys_dir) if keys_dir is not None else default_keys_dir()
    try:
        return (folder / ROOT_FILE).read_bytes()
    except OSError:
        return None


#: C2PA signing algorithm for each supported curve.
_CURVE_ALG = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}


def signing_algorithm(material: SigningMaterial) -> str:
    """``es256``/``es384``/``es512`` for the material's key curve."""
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(material.key_pem, password=None)
    return _CURVE_ALG[private.curve.name]  # type: ignore[union-attr]


__all__ = [
    "CHAIN_FILE",
    "KEY_FILE",
    "ROOT_FILE",
    "SigningMaterial",
    "SigningMaterialError",
    "default_keys_dir",
    "load_signing_material",
    "local_trust_anchor",
    "make_signing_chain",
    "signing_algorithm",
]
