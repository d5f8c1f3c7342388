"""Consented skins: a real person's face used as a skin, only with their recorded consent.

A skin made from a photo *is* that person to a face recognizer: everyone it
is put on starts to look like them. So a custom skin is kept only together
with a consent record that says who agreed, to what (scope), when, and until
when, plus the SHA-256 of the photo it was made from and of the stored skin.
The photo itself is not kept; its hash lets the person or an auditor check
later which photo a skin came from. An expired record makes the skin
unusable, and ``remove`` withdraws it (skin and record are deleted).

Skin ids are ``c-`` plus eight hex digits of the skin's hash: they appear in
every report that names the skin used, so they must not carry the person's
name.

The store lives in ``$FACESKIN_DATA_DIR``, else ``$XDG_DATA_HOME/faceskin``,
else ``~/.local/share/faceskin``, under ``skins/``: ``<id>.skin`` and
``<id>.consent.json``, written atomically, readable by the owner only
(biometric data).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from faceskin.donor import Donor
from faceskin.errors import FaceskinError, InputError

PREFIX = "c-"
RECORD_SUFFIX = ".consent.json"
MAX_YAW = 25.0  # degrees: a more turned face leaves half the skin to be guessed
MAX_FILL = 0.35  # share of the face the cleaning had to synthesise (hair, hands, shadow)


class ConsentError(FaceskinError):
    """A consented skin that is missing, expired, or whose record does not match the stored skin."""


def default_store_dir() -> Path:
    if os.environ.get("FACESKIN_DATA_DIR"):
        return Path(os.environ["FACESKIN_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "faceskin"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_date(text: str, what: str) -> _dt.date:
    try:
        return _dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise InputError(f"{what} {text!r} is not a date; use YYYY-MM-DD") from None


@dataclass(frozen=True)
class ConsentRecord:
    skin_id: str
    who: str  # the person who consented (as they asked to be named)
    statement: str  # their consent, verbatim
    scope: str  # what the skin may be used for
    granted: str  # ISO date the consent was given
    expires: str  # ISO date after which the skin must not be used
    photo_sha256: str  # the photo the skin was made from (the photo is not kept)
    skin_sha256: str  # the stored skin file
    created: str  # ISO timestamp (UTC) the record was written
    tool: str  # faceskin version that made it

    def expired(self, today: _dt.date | None = None) -> bool:
        return (today or _dt.date.today()) > _dt.date.fromisoformat(self.expires)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ConsentRecord":
        data = json.loads(text)
        fields = set(cls.__dataclass_fields__)
        if set(data) != fields:
            raise ValueError(f"consent record fields {sorted(set(data) ^ fields)} missing or unexpected")
        return cls(**{k: str(v) for k, v in data.items()})


def _write_private(path: Path, data: bytes) -> None:
    """Atomic write (temp file beside it, then rename), owner-only permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".faceskin-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def skin_from_photo(image: np.ndarray, detector, landmarker, name: str = "photo") -> Donor:
    """A cleaned donor from a photo that shows exactly one face, facing the camera."""
    from faceskin.donor import build_donor
    from faceskin.landmarks import head_angles

    faces = detector.detect(image)
    if not faces:
        raise InputError(f"{name}: no face found; a consented skin needs a photo of exactly one face")
    if len(faces) > 1:
        raise InputError(f"{name}: {len(faces)} faces found; a consented skin needs a photo of exactly one face "
                         "(everyone visible would have to consent)")
    face = faces[0]
    if not landmarker.fit(image, face):
        raise InputError(f"{name}: the face could not be measured (landmarks failed); use a clearer, frontal photo")
    yaw, _, _ = head_angles(face)
    if abs(yaw) > MAX_YAW:
        raise InputError(f"{name}: the face is turned {abs(yaw):.0f} degrees; use a photo facing the camera")
    donor = build_donor(image, face, skin_id="pending", source="consented photo")
    if donor.fill_fraction > MAX_FILL:
        raise InputError(f"{name}: {donor.fill_fraction:.0%} of the face is hidden (hair, hands, shadow); "
                         "use a photo with the face uncovered")
    return donor


class ConsentStore:
    """The user's consented skins and their records."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_store_dir()
        self.folder = self.root / "skins"

    def _paths(self, skin_id: str) -> tuple[Path, Path]:
        if not skin_id.startswith(PREFIX) or not all(c in "0123456789abcdef" for c in skin_id[len(PREFIX):]):
            raise ConsentError(f"{skin_id!r} is not a consented skin id (they look like {PREFIX}1a2b3c4d)")
        return self.folder / f"{skin_id}.skin", self.folder / f"{skin_id}{RECORD_SUFFIX}"

    def add(self, donor: Donor, photo_bytes: bytes, *, who: str, statement: str, scope: str,
            expires: _dt.date, granted: _dt.date | None = None) -> tuple[Donor, ConsentRecord]:
        """Store ``donor`` (made from the photo whose bytes are given) under a new id with its consent record."""
        from faceskin import __version__

        granted = granted or _dt.date.today()
        for label, text in (("who", who), ("consent", statement), ("scope", scope)):
            if not text or not text.strip():
                raise InputError(f"the consent record needs a non-empty {label}")
        if expires <= granted:
            raise InputError(f"consent expiry {expires.isoformat()} must be after the date it was given "
                             f"({granted.isoformat()})")
        texture_hash = sha256_hex(donor.texture.tobytes())
        skin_id = PREFIX + texture_hash[:8]
        stored = Donor(skin_id=skin_id, texture=donor.texture, landmarks=donor.landmarks,
                       source="consented skin", tone=donor.tone, fill_fraction=donor.fill_fraction)
        data = stored.to_bytes()
        record = ConsentRecord(
            skin_id=skin_id, who=who.strip(), statement=statement.strip(), scope=scope.strip(),
            granted=granted.isoformat(), expires=expires.isoformat(), photo_sha256=sha256_hex(photo_bytes),
            skin_sha256=sha256_hex(data),
            created=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            tool=f"faceskin {__version__}")
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        skin_path, record_path = self._paths(skin_id)
        _write_private(skin_path, data)
        _write_private(record_path, record.to_json().encode("utf-8"))  # last: a skin without a record is unusable
        return Donor.from_bytes(data), record

    def record(self, skin_id: str) -> ConsentRecord:
        _, record_path = self._paths(skin_id)
        if not record_path.is_file():
            raise ConsentError(f"no consented skin {skin_id} in {self.folder}")
        try:
            return ConsentRecord.from_json(record_path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as exc:
            raise ConsentError(f"the consent record of {skin_id} is damaged: {exc}") from None

    def get(self, skin_id: str, today: _dt.date | None = None) -> tuple[Donor, ConsentRecord]:
        """The skin and its record, if its consent is current and the skin is the one the record hashed."""
        record = self.record(skin_id)
        if record.expired(today):
            raise ConsentError(f"the consent for skin {skin_id} expired on {record.expires}; it can no longer be used")
        skin_path, _ = self._paths(skin_id)
        if not skin_path.is_file():
            raise ConsentError(f"skin {skin_id} has a consent record but its skin file is missing")
        data = skin_path.read_bytes()
        if sha256_hex(data) != record.skin_sha256:
            raise ConsentError(f"skin {skin_id} does not match the hash in its consent record; refusing to use it")
        return Donor.from_bytes(data), record

    def records(self) -> list[ConsentRecord]:
        if not self.folder.is_dir():
            return []
        out = []
        for p in sorted(self.folder.glob(f"{PREFIX}*{RECORD_SUFFIX}")):
            try:
                out.append(self.record(p.name[: -len(RECORD_SUFFIX)]))
            except ConsentError:
                continue
        return out

    def remove(self, skin_id: str) -> None:
        """Withdraw a skin: delete the skin and its record."""
        skin_path, record_path = self._paths(skin_id)
        if not skin_path.exists() and not record_path.exists():
            raise ConsentError(f"no consented skin {skin_id} in {self.folder}")
        skin_path.unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)
