"""C2PA content credentials: say, in a signed and tamper-evident way, that faces were replaced.

Every output gets a C2PA manifest (via ``c2pa-python``) with one action,
``c2pa.edited``, whose digital source type is IPTC's
``compositeWithTrainedAlgorithmicMedia`` (real footage with synthetic parts
composited in), the software agent ``faceskin <version>``, and a faceskin
assertion with the number of faces replaced, the skin ids used and the
invisible watermark's run id. A ``c2pa.created`` action with the same source
type comes first, because C2PA requires a manifest without a parent ingredient
to start with it.

What is deliberately *not* in the manifest:

* **No ingredient.** An ingredient would describe the original file (its
  hash, title, format and, by default, a thumbnail): the hash alone lets
  anyone holding the original confirm the match, and a thumbnail is the
  unprotected face. The manifest describes the output only.
* **No thumbnail** of the output either (c2pa-rs adds one by default): it
  adds nothing the file does not show and is one more copy of pixels to audit.
* **No title** (c2pa-rs would use the file name, which can be a person's name).
* **No time stamp authority**: signing is offline; the claim carries no
  signing time from a third party, so validity is checked against "now".

Signing needs a certificate chain and key (see :mod:`faceskin.keys`); without
them :class:`~faceskin.keys.SigningMaterialError` is raised, never a silent
unlabelled output (the CLI's ``--no-label`` is the only way round).

Formats: JPEG, PNG, WebP, TIFF, MP4/M4V and MOV, as c2pa-rs embeds them
(JPEG APP11 segments, PNG ``caBX`` chunk, WebP ``C2PA`` chunk, an ISO BMFF
``uuid`` box). Matroska has no C2PA binding, so ``.mkv`` outputs cannot be
labelled (:class:`LabelError`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import __version__
from .errors import FaceskinError, OutputError
from .keys import SigningMaterial, signing_algorithm

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
#: Label of faceskin's own assertion (C2PA asks for reverse-domain-style custom labels).
ASSERTION_LABEL = "org.faceskin.alteration"
TOOL_NAME = "faceskin"

MIME_BY_SUFFIX = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
}

#: Validation codes that mean the content or the manifest changed after signing.
TAMPER_CODES = frozenset({
    "assertion.dataHash.mismatch",
    "assertion.bmffHash.mismatch",
    "assertion.boxesHash.mismatch",
    "assertion.hashedURI.mismatch",
    "claimSignature.mismatch",
    "assertion.collectionHash.mismatch",
})
#: Codes about the signer's standing, not about the file's integrity.
TRUST_CODES = frozenset({"signingCredential.untrusted", "signingCredential.ocsp.skipped"})

# Offline always: no remote manifests, no OCSP; no thumbnails in what we write.
_BASE_SETTINGS: dict[str, Any] = {
    "builder": {"thumbnail": {"enabled": False}},
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}


class LabelError(FaceskinError):
    """An output that cannot be labelled (unsupported format, unreadable file, signing failure)."""


@dataclass(frozen=True)
class Alteration:
    """What faceskin did to one output; everything here ends up in the signed manifest.

    ``faces_obscured`` counts faces covered by the fallback (a fill of the head region)
    instead of a skin. ``watermark_run_id`` is the invisible mark's payload,
    or None when no mark was embedded; ``watermark_scope`` is "faces" or
    "frame".
    """

    faces_replaced: int
    skin_ids: Sequence[str] = ()
    faces_obscured: int = 0
    watermark_run_id: int | None = None
    watermark_scope: str | None = None
    badge: bool = False

    @classmethod
    def from_outcomes(
        cls,
        outcomes: Iterable[Any],
        *,
        watermark_run_id: int | None = None,
        watermark_scope: str | None = None,
        badge: bool = False,
    ) -> "Alteration":
        """Summarise :class:`~faceskin.faces.FaceOutcome` s of one photo, or of all frames of a video.

        Faces with a ``track_id`` are counted once per track (a person in 300
        frames is one face replaced), the others once each.
        """
        skinned: set[Any] = set()
        obscured: set[Any] = set()
        skin_ids: set[str] = set()
        for i, o in enumerate(outcomes):
            key = ("track", o.track_id) if getattr(o, "track_id", None) is not None else ("face", i)
            if o.method == "skin":
                skinned.add(key)
                if o.skin_id:
                    skin_ids.add(o.skin_id)
            else:
                obscured.add(key)
        # A track skinned in some frames and covered in others counts as replaced.
        return cls(
            faces_replaced=len(skinned),
            skin_ids=tuple(sorted(skin_ids)),
            faces_obscured=len(obscured - skinned),
            watermark_run_id=watermark_run_id,
            watermark_scope=watermark_scope,
            badge=badge,
        )


#: Ids of the built-in skins: the skin model's default set (``syn001``...) and the older cleaned
#: donor set (``s030``...), all synthetic people; anything else is a user's donor or consented skin.
_BUILTIN_SKIN_ID = re.compile(r"^(s|syn)\d{3}$")


def public_skin_ids(skin_ids: Sequence[str]) -> list[str]:
    """Built-in skin ids as they are; any other (donor photos, ids made from file names) as "custom".

    A donor skin's id comes from its file name, which may be a person's name,
    and the manifest travels with every copy of the output.
    """
    return sorted({s if _BUILTIN_SKIN_ID.match(s) else "custom" for s in skin_ids})


def build_manifest(alteration: Alteration) -> dict[str, Any]:
    """The manifest definition c2pa signs: actions + faceskin assertion, nothing about the source."""
    skins = public_skin_ids(alteration.skin_ids)
    description = f"{alteration.faces_replaced} face(s) replaced with synthetic skins"
    if alteration.faces_obscured:
        description += f", {alteration.faces_obscured} face(s) obscured"
    assertion: dict[str, Any] = {
        "faces_replaced": int(alteration.faces_replaced),
        "faces_obscured": int(alteration.faces_obscured),
        "skin_ids": skins,
        "visible_badge": bool(alteration.badge),
    }
    if alteration.watermark_run_id is not None:
        assertion["watermark"] = {
            "scheme": "faceskin-qim",
            "version": _watermark_version(),
            "run_id": f"{alteration.watermark_run_id:06x}",
            "scope": alteration.watermark_scope or "faces",
        }
    agent = {"name": TOOL_NAME, "version": __version__}
    return {
        "claim_generator_info": [agent],
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE, "softwareAgent": agent},
                        {
                            "action": "c2pa.edited",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": agent,
                            "description": description,
                            "parameters": {"faces_replaced": int(alteration.faces_replaced)},
                        },
                    ]
                },
            },
            {"label": ASSERTION_LABEL, "data": assertion},
        ],
    }


def _watermark_version() -> int:
    from .watermark import SCHEME_VERSION

    return SCHEME_VERSION


def can_label(path: str | os.PathLike[str]) -> bool:
    """Whether C2PA can be embedded in a file with this suffix."""
    return Path(path).suffix.lower() in MIME_BY_SUFFIX


def _mime(path: Path) -> str:
    mime = MIME_BY_SUFFIX.get(path.suffix.lower())
    if mime is None:
        allowed = ", ".join(sorted(MIME_BY_SUFFIX))
        raise LabelError(
            f"{path}: content credentials cannot be embedded in '{path.suffix or 'no extension'}' files; "
            f"use one of {allowed}, or --no-label"
        )
    return mime


def _context(trust_anchor_pem: bytes | None = None):
    import c2pa

    settings = json.loads(json.dumps(_BASE_SETTINGS))
    if trust_anchor_pem:
        settings["trust"] = {"user_anchors": trust_anchor_pem.decode("ascii")}
        settings["verify"]["verify_trust"] = True
    return c2pa.Context(settings=c2pa.Settings.from_dict(settings))


class Labeller:
    """Signs outputs with one signing identity; create once per run, label many files."""

    def __init__(self, material: SigningMaterial) -> None:
        self.material = material
        self._alg = signing_algorithm(material)
        self._context = _context()

    def label_file(
        self,
        source: str | os.PathLike[str],
        alteration: Alteration,
        dest: str | os.PathLike[str] | None = None,
    ) -> bytes:
        """Write ``source`` + manifest to ``dest`` (default: over ``source``), atomically.

        The signed file is written to a temporary name in the destination
        folder and renamed over ``dest``, so an interrupted run leaves either
        no file or a fully labelled one under the final name; the mode of
        ``source`` is kept. Returns the manifest store bytes (JUMBF) that were
        embedded, for audits.
        """
        import c2pa

        src = Path(source)
        dst = Path(dest) if dest is not None else src
        mime = _mime(dst)
        if _mime(src) != mime:
            raise LabelError(f"{src} and {dst} are different formats; label before renaming")
        try:
            mode = src.stat().st_mode & 0o777
        except OSError as exc:
            raise LabelError(f"cannot read {src}: {exc.strerror or exc}") from None
        try:
            signer = c2pa.Signer.from_info(
                c2pa.C2paSignerInfo(
                    alg=self._alg.encode(),
                    sign_cert=self.material.chain_pem,
                    private_key=self.material.key_pem,
                    ta_url=None,
                )
            )
        except c2pa.C2paError as exc:
            raise LabelError(f"signing key from {self.material.source} rejected by C2PA: {exc}") from None
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".faceskin-tmp", dir=dst.parent)
        except OSError as exc:
            signer.close()
            raise OutputError(f"cannot write into {dst.parent}: {exc.strerror or exc}") from None
        tmp = Path(tmp_name)
        try:
            with signer, os.fdopen(fd, "w+b") as out, open(src, "rb") as inp:
                with c2pa.Builder(build_manifest(alteration), self._context) as builder:
                    manifest = builder.sign(signer, mime, inp, out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, dst)
        except c2pa.C2paError as exc:
            tmp.unlink(missing_ok=True)
            raise LabelError(f"{dst}: cannot embed content credentials: {exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return bytes(manifest)


def label_file(
    source: str | os.PathLike[str],
    alteration: Alteration,
    material: SigningMaterial,
    dest: str | os.PathLike[str] | None = None,
) -> bytes:
    """One-off :meth:`Labeller.label_file`."""
    return Labeller(material).label_file(source, alteration, dest)


@dataclass
class ManifestReport:
    """What the C2PA manifest of a file says and whether it holds up.

    ``state``: "absent" (no manifest), "valid" (intact; signer not in the
    trust list, the normal case for self-issued faceskin keys), "trusted"
    (intact and chained to a given trust anchor), "invalid" (present but
    fails validation) or "unreadable" (a manifest store that cannot be parsed).
    ``tampered`` is true when the failure says the content or manifest
    changed after signing.
    """

    state: str
    tampered: bool = False
    failures: list[str] = field(default_factory=list)
    by_faceskin: bool = False
    generator: str | None = None
    actions: list[str] = field(default_factory=list)
    digital_source_types: list[str] = field(default_factory=list)
    alteration: dict[str, Any] | None = None
    signer: dict[str, Any] | None = None
    has_ingredients: bool = False
    has_thumbnail: bool = False
    error: str | None = None

    @property
    def intact(self) -> bool:
        return self.state in ("valid", "trusted")

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "tampered": self.tampered,
            "failures": list(self.failures),
            "by_faceskin": self.by_faceskin,
            "generator": self.generator,
            "actions": list(self.actions),
            "digital_source_types": list(self.digital_source_types),
            "alteration": self.alteration,
            "signer": self.signer,
            "has_ingredients": self.has_ingredients,
            "has_thumbnail": self.has_thumbnail,
            "error": self.error,
        }


def read_manifest(path: str | os.PathLike[str], trust_anchor_pem: bytes | None = None) -> ManifestReport:
    """Read and validate the active manifest of ``path`` (offline)."""
    import c2pa

    path = Path(path)
    try:
        path.stat()
    except OSError as exc:
        from .errors import InputError

        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    mime = MIME_BY_SUFFIX.get(path.suffix.lower())
    try:
        with open(path, "rb") as fh:
            reader = c2pa.Reader.try_create(mime or "", fh, context=_context(trust_anchor_pem))
            if reader is None:
                return ManifestReport(state="absent")
            with reader:
                store = json.loads(reader.json())
    except c2pa.C2paError as exc:
        kind = type(exc).__name__.lstrip("_").removeprefix("C2pa")
        if kind in ("NotSupported",):
            return ManifestReport(state="absent", error=f"format not supported by C2PA: {exc}")
        # A manifest store that is there but cannot be parsed: damaged or forged.
        return ManifestReport(state="unreadable", tampered=True, error=str(exc))
    return _report_from_store(store)


def _report_from_store(store: dict[str, Any]) -> ManifestReport:
    active = store.get("manifests", {}).get(store.get("active_manifest") or "", {})
    statuses = store.get("validation_status") or []
    codes = [s.get("code", "") for s in statuses]
    failures = [c for c in codes if c not in TRUST_CODES]
    state_word = (store.get("validation_state") or "").lower()
    if failures or state_word == "invalid":
        state = "invalid"
    elif state_word == "trusted":
        state = "trusted"
    else:
        state = "valid"
    generators = active.get("claim_generator_info") or []
    generator = None
    if generators:
        g = generators[0]
        generator = f"{g.get('name', '?')} {g.get('version', '')}".strip()
    actions, sources, alteration = [], [], None
    for assertion in active.get("assertions", []):
        label = assertion.get("label", "")
        if label.startswith("c2pa.actions"):
            for act in assertion.get("data", {}).get("actions", []):
                actions.append(act.get("action", ""))
                if act.get("digitalSourceType"):
                    sources.append(act["digitalSourceType"])
        elif label == ASSERTION_LABEL:
            alteration = assertion.get("data")
    by_faceskin = bool(generators) and generators[0].get("name") == TOOL_NAME and alteration is not None
    sig = active.get("signature_info") or {}
    return ManifestReport(
        state=state,
        tampered=any(c in TAMPER_CODES for c in failures),
        failures=failures,
        by_faceskin=by_faceskin,
        generator=generator,
        actions=actions,
        digital_source_types=sources,
        alteration=alteration,
        signer={k: sig.get(k) for k in ("issuer", "common_name", "alg")} if sig else None,
        has_ingredients=bool(active.get("ingredients")),
        has_thumbnail="thumbnail" in active,
    )


__all__ = [
    "ASSERTION_LABEL",
    "Alteration",
    "DIGITAL_SOURCE_TYPE",
    "LabelError",
    "Labeller",
    "ManifestReport",
    "build_manifest",
    "public_skin_ids",
    "can_label",
    "label_file",
    "read_manifest",
]
