"""Which skin each person gets.

Skins come from four places: the default set (named identities drawn from
faceskin's own statistical face model, ``faceskin.skinmodel``: they belong to
nobody), the older built-in set (cleaned donor textures of synthetic,
non-existent people), donor photos the user supplies, and consented skins the
user added with ``faceskin skins add`` (``faceskin.consent``: only with a
current consent record, and only when asked for by id). Rules from the prototype: a skin should fit the person's skin tone (the
biggest naturalness win), and no two people in one output may share a skin
(recognizers "see" the donor, so shared skins would link them).

A third cue decides which of the skins that fit a tone is tried first: how
unlike the person the skin's own portrait looks to the self-check's
recognizer (SFace). A rendered skin keeps the person's shading, eyes and
outline, so some skins hide a given person much better than others
(self-check similarity 0.10-0.68 over 12 tone-matched skins on one face), and
the portrait predicts which (Spearman rho 0.48, median over 40 London
faces). Without a key the draw is still random, among the ``candidates`` skins
least like the person of the ``tone_band`` closest in tone; the person's
embedding is used for that comparison in memory and never stored. The
embeddings of the default skins' portraits ship with the package
(``tools/embed_skins.py``).

Linkability policy (who can tell that two outputs show the same person):

- default: every run draws skins afresh (``seed=None``), so the same person
  in two files gets unrelated skins and the outputs cannot be linked through
  the skin. Within one file a tracked person keeps their skin.
- ``seed``: the draws repeat exactly, for reproducible results on the same
  input; it says nothing about who a person is.
- ``key`` (a secret): the same person gets the same skin across files, for
  continuity in a series. "Same person" without storing anything about
  anyone can only mean "looks alike to a face recognizer", so the choice is a
  keyed function of the person's face embedding: every skin gets a secret
  random direction derived from HMAC-SHA256(key, skin id), and the person
  wears the available skin whose direction is closest to their embedding
  (keyed spherical hashing). Nothing is stored: not the embedding, not a
  roster, not a mapping; it is recomputed from the face every time.

  The trade-off, stated plainly:
  * what it gives away: anyone who sees several outputs made with one key
    can tell that faces wearing the same skin are probably one person. That
    is the purpose, but it is linkage all the same.
  * the key is the secret: whoever holds it and a photo of someone can
    compute which skin that person would get and look for it in published
    outputs, so the skin becomes a weak identity tag. Keep the key private,
    use one key per series, and never publish outputs with and without a key
    side by side.
  * it is not exact: two photos of one person get the same skin only when
    their embeddings fall on the same side of the hashing's boundaries (see
    ``bench/skin_collisions.py`` for the measured agreement), and two
    different people get the same skin by chance at about 1/len(pool) per
    pair across files (never within one file: skins stay unique there).
  * without the key the skin id reveals nothing usable about the embedding:
    the directions are pseudo-random functions of the key.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from faceskin.donor import Donor, to_lab
from faceskin.faces import Face


def measure_tone(image: np.ndarray, face: Face) -> tuple[float, float, float] | None:
    """Median L, a, b of the person's cheek skin (None without landmarks)."""
    if face.landmarks is None:
        return None
    L = face.landmarks
    h, w = image.shape[:2]
    # cheeks: below the eyes, beside the nose
    pts = []
    for idx in ([117, 118, 101, 36, 205, 187, 123], [346, 347, 330, 266, 425, 411, 352]):
        pts.append(L[idx, :2])
    x0, y0 = np.floor(np.vstack(pts).min(0)).astype(int)
    x1, y1 = np.ceil(np.vstack(pts).max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    local = L.copy()
    local[:, 0] -= x0
    local[:, 1] -= y0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    import cv2

    for idx in ([117, 118, 101, 36, 205, 187, 123], [346, 347, 330, 266, 425, 411, 352]):
        cv2.fillPoly(mask, [np.round(local[idx, :2]).astype(np.int32)], 255)
    lab = to_lab(image[y0:y1, x0:x1])
    px = lab[mask > 0]
    if len(px) < 4:
        return None
    return tuple(float(x) for x in np.median(px, 0))


# ---------------------------------------------------------------- the upper lip

# Mesh vertices of the skin between the nose and the upper lip (not the lip itself), and of the cheeks.
UPPER_LIP_SKIN = [92, 164, 165, 167, 322, 391, 393]
CHEEK_SKIN = [117, 118, 101, 36, 205, 187, 123, 346, 347, 330, 266, 425, 411, 352]
# A skin whose upper lip is darker than the person's by more than this many L units (each against
# its own cheeks), or lighter by more than UPPER_LIP_LIGHTER, is passed over while the tone band has
# enough others (``SkinLibrary.pick``). The skins' values spread wider (-24 to +20 over the default
# set) than the people's (-20 to +6, London photos), hence the wider margin on the light side.
MOUSTACHE_MARGIN = 5.0
UPPER_LIP_LIGHTER = 8.0


def _upper_lip_shade(lightness: np.ndarray, points: np.ndarray, blur: float) -> float:
    import cv2

    L = cv2.GaussianBlur(lightness, (0, 0), max(blur, 0.5))
    p = np.round(points).astype(int)
    v = L[p[:, 1].clip(0, L.shape[0] - 1), p[:, 0].clip(0, L.shape[1] - 1)]
    return float(v[UPPER_LIP_SKIN].mean() - v[CHEEK_SKIN].mean())


def measure_upper_lip(image: np.ndarray, face: Face) -> float | None:
    """How much lighter (+) or darker (-) the skin above the person's upper lip is than their cheeks
    (L units; None without landmarks): stubble and moustaches read from about -10, bare skin from about 0."""
    if face.landmarks is None:
        return None
    from faceskin.skin import face_scale

    pts = face.landmarks[UPPER_LIP_SKIN + CHEEK_SKIN, :2]
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - 8, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 9, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    lab = to_lab(image[y0:y1, x0:x1])
    points = face.landmarks[:, :2] - (x0, y0)
    return _upper_lip_shade(lab[..., 0], points, 0.01 * face_scale(face.landmarks))


def skin_upper_lip(entry) -> float:
    """``measure_upper_lip`` of a skin, read from its texture at the same mesh points (cached on the entry)."""
    cached = getattr(entry, "_upper_lip", None)
    if cached is None:
        from faceskin.mesh import canonical_mesh

        donor = _as_donor(entry)
        n = donor.texture.shape[0]
        uv = canonical_mesh().uv * n
        face_height = float(np.linalg.norm(uv[10] - uv[152]))
        cached = _upper_lip_shade(to_lab(donor.texture)[..., 0], uv, 0.01 * face_height)
        entry._upper_lip = cached
    return cached


# ---------------------------------------------------------------- skin tone groups

# Lower bounds of L* (cheek skin as photographed, the scale ``measure_tone`` and the
# skins' tones share; photos read darker than a colorimeter, so the dermatological
# ITA classes would call most faces "brown"), lightest first.
TONE_GROUPS = (("light", 60.0), ("medium-light", 52.0), ("medium", 44.0), ("medium-dark", 36.0), ("dark", -1.0))


def tone_group(tone: Sequence[float]) -> str:
    for name, lower in TONE_GROUPS:
        if tone[0] >= lower:
            return name
    return TONE_GROUPS[-1][0]


# ---------------------------------------------------------------- skin sources


def builtin_skins() -> list[Donor]:
    """The donor skins shipped inside the package (``faceskin/skins/*.skin``)."""
    folder = resources.files("faceskin") / "skins"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".skin"):
            out.append(Donor.from_bytes(entry.read_bytes()))
    return out


@dataclass
class ModelSkin:
    """A named skin of the default set: a seed of the skin model, drawn when first needed.

    Listing and choosing need only the id, seed, tone and attributes (stored
    with the model), so a library of hundreds of skins costs nothing until a
    skin is actually worn (about 0.2 s to draw, once per process).
    """

    skin_id: str
    seed: int
    tone: tuple[float, float, float]
    attributes: dict = field(default_factory=dict)
    _donor: Donor | None = field(default=None, repr=False, compare=False)
    _upper_lip: float | None = field(default=None, repr=False, compare=False)

    @property
    def source(self) -> str:
        return f"skin model seed {self.seed}"

    @property
    def tone_group(self) -> str:
        return tone_group(self.tone)

    def donor(self) -> Donor:
        if self._donor is None:
            from faceskin.skinmodel import default_model

            self._donor = default_model().sample(self.seed).donor(self.skin_id)
        return self._donor


def default_skins() -> list[ModelSkin]:
    """The curated default set stored with the skin model (ids ``syn001`` ...).

    Curated by ``tools/train_skin_model.py``: drawn from the model, spread
    over skin tones, and kept only if no recognizer of the panel matches them
    to each other or to a training face (``bench/skin_collisions.py`` checks
    the shipped set, also against real people).
    """
    return list(_default_skins())


@cache
def _default_skins() -> tuple[ModelSkin, ...]:  # shared, so a skin drawn once stays drawn in this process
    from faceskin.skinmodel import default_model

    x = default_model().extras
    if "default_ids" not in x:
        raise FileNotFoundError("the skin model has no curated default set; run tools/train_skin_model.py")
    names = [str(n) for n in x["default_attribute_names"]]
    return tuple(ModelSkin(skin_id=str(i), seed=int(s), tone=tuple(float(v) for v in t),
                           attributes={n: float(v) for n, v in zip(names, a)})
                 for i, s, t, a in zip(x["default_ids"], x["default_seeds"], x["default_tones"], x["default_attributes"]))


def find_skin(skin_id: str) -> Donor:
    """Any skin by id: the default set, the built-in donors, or a consented skin (``c-...``, if current)."""
    if skin_id.startswith("c-"):
        from faceskin.consent import ConsentStore

        return ConsentStore().get(skin_id)[0]
    for entry in default_skins():
        if entry.skin_id == skin_id:
            return entry.donor()
    for donor in builtin_skins():
        if donor.skin_id == skin_id:
            return donor
    raise KeyError(skin_id)


def _as_donor(entry) -> Donor:
    return entry if isinstance(entry, Donor) else entry.donor()


# ---------------------------------------------------------------- keyed choice


def _key_bytes(key: bytes | str) -> bytes:
    if isinstance(key, str):
        key = key.encode("utf-8")
    if len(key) == 0:
        raise ValueError("the secret key is empty")
    return bytes(key)


def keyed_direction(key: bytes, skin_id: str, dim: int) -> np.ndarray:
    """The secret unit vector of one skin under ``key`` (independent of the library's order and size)."""
    digest = hmac.new(key, b"faceskin skin direction\0" + skin_id.encode("utf-8"), hashlib.sha256).digest()
    v = np.random.default_rng(np.frombuffer(digest, np.uint32)).standard_normal(dim)
    return v / np.linalg.norm(v)


def keyed_ranking(key: bytes, skin_ids: Sequence[str], descriptor: np.ndarray) -> list[int]:
    """Indices of ``skin_ids`` ordered by how close their keyed direction is to ``descriptor``."""
    d = np.asarray(descriptor, np.float64).ravel()
    d = d / max(float(np.linalg.norm(d)), 1e-12)
    scores = [float(keyed_direction(key, s, d.size) @ d) for s in skin_ids]
    return [int(i) for i in np.argsort(scores)[::-1]]


@cache
def portrait_embeddings() -> dict[str, np.ndarray]:
    """Skin id -> SFace embedding of the default skin's portrait (``tools/embed_skins.py``).

    Empty when the shipped file was made with another skin model or another
    SFace than the installed ones: stale embeddings would steer the choice by
    faces that are not the skins', so the choice then goes by tone alone.
    """
    from faceskin import models

    with np.load(models.path(EMBEDDINGS_FILE), allow_pickle=False) as z:
        made_with = {"skinmodel.npz": str(z["skinmodel_sha256"]), "sface_int8_pruned.onnx": str(z["sface_sha256"])}
        for name in made_with:
            models.path(name)  # refuses a file whose sha256 is not the listed one
        if any(models.SHA256[n] != h for n, h in made_with.items()):
            return {}
        return {str(i): v.astype(np.float64) for i, v in zip(z["ids"], z["sface"])}


EMBEDDINGS_FILE = "skin_embeddings.npz"


def skin_portrait_embedding(skin) -> np.ndarray | None:
    """SFace embedding of a skin's frontal portrait, as the self-check embeds faces (None: no face found)."""
    from faceskin.detect import FaceDetector
    from faceskin.landmarks import Landmarker
    from faceskin.skin import keypoints_from_landmarks

    global _PORTRAIT_TOOLS
    if _PORTRAIT_TOOLS is None:
        _PORTRAIT_TOOLS = (FaceDetector(rotations=(0,)), Landmarker())
    detector, landmarker = _PORTRAIT_TOOLS
    img = preview(skin, 256)
    faces = detector.detect(img)
    if not faces:
        return None
    face = max(faces, key=lambda f: f.size)
    if not landmarker.fit(img, face):
        return None
    return _sface().embed(img, keypoints_from_landmarks(face.landmarks))


_PORTRAIT_TOOLS = None


def person_descriptor(image: np.ndarray, face: Face) -> np.ndarray:
    """The face embedding a keyed choice uses (SFace, vendored): held in memory, never written anywhere."""
    if face.keypoints is None:
        raise ValueError("a keyed skin choice needs the detector's five keypoints")
    return _sface().embed(image, face.keypoints)


@cache
def _sface():
    """The self-check's SFace, without dlib: the keyed choice and the skins' portraits only embed."""
    from faceskin.identity_check import IdentityCheck

    return IdentityCheck(second_opinion=False)


# ---------------------------------------------------------------- the library


class SkinLibrary:
    """A set of skins and the policy for handing them out (see the module docstring).

    ``skins`` holds ``Donor`` objects or lazily drawn ``ModelSkin`` entries;
    both have ``skin_id`` and ``tone``, and ``choose``/``by_id`` always return
    a ``Donor`` ready to render.
    """

    def __init__(self, skins: Iterable, seed: int | None = None, candidates: int = 3,
                 key: bytes | str | None = None, tone_band: int = 12):
        self.skins = list(skins)
        if not self.skins:
            raise ValueError("the skin library is empty")
        ids = [s.skin_id for s in self.skins]
        if len(set(ids)) != len(ids):
            raise ValueError("skin ids in a library must be unique")
        self.rng = np.random.default_rng(seed)
        self.candidates = candidates
        self.key = _key_bytes(key) if key is not None else None
        self.tone_band = tone_band  # with a key: how many skins nearest in tone the embedding chooses among
        self._consented: dict[str, Donor] = {}  # kept apart from ``skins``: never handed out by ``choose``

    @classmethod
    def builtin(cls, seed: int | None = None) -> "SkinLibrary":
        return cls(builtin_skins(), seed=seed)

    @classmethod
    def default(cls, seed: int | None = None, key: bytes | str | None = None, **kwargs) -> "SkinLibrary":
        """The curated default set of model skins (see ``default_skins``)."""
        return cls(default_skins(), seed=seed, key=key, **kwargs)

    def by_id(self, skin_id: str) -> Donor:
        """The skin with this id; consented skins (``c-...``) come from the user's consent store.

        A consented skin is never drawn at random, only worn when asked for by
        id, and only while its consent is current (``ConsentError`` otherwise).
        """
        for s in self.skins:
            if s.skin_id == skin_id:
                return _as_donor(s)
        from faceskin.consent import PREFIX, ConsentStore

        if skin_id.startswith(PREFIX):
            if skin_id not in self._consented:
                self._consented[skin_id] = ConsentStore().get(skin_id)[0]
            return self._consented[skin_id]
        raise KeyError(skin_id)

    def _tone_order(self, pool: list, tone) -> list[int]:
        t = np.array(tone)
        # lightness matters most for plausibility; yellow-blue next; red-green least
        d = [float(np.sum(((np.array(s.tone) - t) * np.array([1.0, 0.6, 0.9])) ** 2)) for s in pool]
        return [int(i) for i in np.argsort(d, kind="stable")]

    def choose(self, tone: tuple[float, float, float] | None, exclude: set[str] = frozenset(),
               descriptor: np.ndarray | None = None, unlike: np.ndarray | None = None,
               upper_lip: float | None = None) -> Donor:
        """A skin near ``tone``, never one in ``exclude``, ready to render (see ``pick``)."""
        return _as_donor(self.pick(tone, exclude, descriptor, unlike, upper_lip))

    def pick(self, tone: tuple[float, float, float] | None, exclude: set[str] = frozenset(),
             descriptor: np.ndarray | None = None, unlike: np.ndarray | None = None,
             upper_lip: float | None = None):
        """The library entry ``choose`` would hand out (a model skin is not drawn yet).

        Without a key (or without a ``descriptor`` of the person) the skin is
        drawn at random among the ``candidates`` closest in tone; given
        ``unlike`` (the person's SFace embedding), among the ``candidates``
        whose portraits are least like it, of the ``tone_band`` closest in
        tone (skins without a portrait embedding count as most alike). With a
        key and a descriptor it is the keyed choice among the ``tone_band``
        skins closest in tone: the same face gets the same skin in every file.

        ``upper_lip`` (the person's ``measure_upper_lip``): without a key, skins
        whose upper lip is darker than the person's by over ``MOUSTACHE_MARGIN``
        (or lighter by over ``UPPER_LIP_LIGHTER``) leave the tone band while
        ``candidates`` others remain in it: worn on a bare upper lip, a skin's
        stubble shows as a moustache shadow (the model's skins mix both sexes,
        and the choice knows only tone), and a much lighter one as a pale patch.
        """
        pool = [s for s in self.skins if s.skin_id not in exclude] or list(self.skins)
        known_tone = tone is not None and np.all(np.isfinite(tone))
        if self.key is not None and descriptor is not None:
            band = self._tone_order(pool, tone)[: self.tone_band] if known_tone else list(range(len(pool)))
            ranked = keyed_ranking(self.key, [pool[i].skin_id for i in band], descriptor)
            return pool[band[ranked[0]]]
        order = self._tone_order(pool, tone) if known_tone else [int(i) for i in self.rng.permutation(len(pool))]
        band = order[: max(self.tone_band, self.candidates)]
        if upper_lip is not None and np.isfinite(upper_lip):
            plain = [i for i in band
                     if upper_lip - MOUSTACHE_MARGIN <= skin_upper_lip(pool[i]) <= upper_lip + UPPER_LIP_LIGHTER]
            if len(plain) >= max(1, self.candidates):
                band = plain
        known = portrait_embeddings() if unlike is not None else {}
        if known:
            alike = _alikeness(unlike, [pool[i].skin_id for i in band], known)
            band = [band[k] for k in np.argsort(alike, kind="stable")]
        order = band[: max(1, self.candidates)]
        return pool[order[int(self.rng.integers(len(order)))]]

    def least_alike(self, unlike: np.ndarray, exclude: set[str] = frozenset(), count: int = 6,
                    band: int = 12, descriptor: np.ndarray | None = None) -> list[Donor]:
        """Up to ``count`` skins drawn from the ``band`` whose portraits look least like ``unlike``.

        The last resort for a face that no skin near its tone hides: how much a
        skin's portrait resembles the person predicts how much the worn skin
        will (Spearman 0.5-0.65 at the strongest geometry, over all 100 skins,
        on four hard London faces), whatever the tone. Drawn at random within
        the band, so a hard-to-hide person does not always get the same skin;
        with a key and a ``descriptor``, in keyed order (the same face, the
        same skin). Only skins with a portrait embedding take part (none for a
        library of donor photos).
        """
        known = portrait_embeddings()
        pool = [s for s in self.skins if s.skin_id not in exclude and s.skin_id in known]
        if not pool:
            return []
        alike = _alikeness(unlike, [s.skin_id for s in pool], known)
        ids = [int(i) for i in np.argsort(alike, kind="stable")[:band]]
        if self.key is not None and descriptor is not None:
            ids = [ids[r] for r in keyed_ranking(self.key, [pool[i].skin_id for i in ids], descriptor)]
        else:
            ids = [ids[int(i)] for i in self.rng.permutation(len(ids))]
        return [_as_donor(pool[i]) for i in ids[:count]]


def _alikeness(unlike: np.ndarray, skin_ids: Sequence[str], known: dict[str, np.ndarray]) -> list[float]:
    """How much each skin's portrait looks like the person (cosine to ``unlike``); inf without a portrait."""
    u = np.asarray(unlike, np.float64).ravel()
    u = u / max(float(np.linalg.norm(u)), 1e-12)
    return [float(known[i] @ u) if i in known else np.inf for i in skin_ids]


def skins_from_photos(paths: Iterable[Path], detector, landmarker) -> list[Donor]:
    """Build donor skins from photos of consenting (or synthetic) people."""
    from faceskin.donor import build_donor
    from faceskin.imagefile import read_image
    from faceskin.errors import InputError

    out = []
    for p in paths:
        img = read_image(p).rgb
        faces = detector.detect(img)
        if not faces:
            raise InputError(f"{p}: no face found in the donor photo")
        face = max(faces, key=lambda f: f.size)
        if not landmarker.fit(img, face):
            raise InputError(f"{p}: could not fit landmarks to the donor face")
        out.append(build_donor(img, face, skin_id=f"photo-{Path(p).stem}", source=str(p)))
    return out


# ---------------------------------------------------------------- looking at skins


def all_skin_ids() -> list[str]:
    """Ids ``--skin`` accepts without a user store: the default set, then the older donor set."""
    return [s.skin_id for s in default_skins()] + [d.skin_id for d in builtin_skins()]


def preview(skin, size: int = 256) -> np.ndarray:
    """A frontal portrait of any skin (default-set entry or ``Donor``): its texture on its own shape."""
    from faceskin.skinmodel import portrait

    donor = _as_donor(skin)
    return portrait(donor.texture, donor.landmarks, size)[0]


def contact_sheet(skins: Sequence, columns: int = 6, size: int = 192, labels: bool = True) -> np.ndarray:
    """Portraits of ``skins`` in a grid, each captioned with its id (and tone group for default-set skins)."""
    from PIL import Image, ImageDraw

    if not skins:
        raise ValueError("no skins for a contact sheet")
    columns = max(1, min(columns, len(skins)))
    rows = -(-len(skins) // columns)
    caption = 16 if labels else 0
    sheet = Image.new("RGB", (columns * size, rows * (size + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, s in enumerate(skins):
        r, c = divmod(i, columns)
        x, y = c * size, r * (size + caption)
        sheet.paste(Image.fromarray(preview(s, size)), (x, y))
        if labels:
            group = getattr(s, "tone_group", None)
            text = s.skin_id if not isinstance(group, str) else f"{s.skin_id}  {group}"
            draw.text((x + 4, y + size + 2), text, fill=(40, 40, 40))
    return np.asarray(sheet)
