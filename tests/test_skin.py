import numpy as np
import pytest

from faceskin import regions
from faceskin.library import builtin_skins
from faceskin.skin import SkinSettings, face_scale, morph_toward, render_skin


def test_skin_changes_the_face_and_nothing_else(astronaut, astronaut_face):
    out = astronaut.copy()
    render_skin(out, astronaut_face, builtin_skins()[3])
    changed = np.abs(out.astype(int) - astronaut.astype(int)).max(2) > 0
    x0, y0 = astronaut_face.landmarks[:468, :2].min(0) - 6
    x1, y1 = astronaut_face.landmarks[:468, :2].max(0) + 6
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
    # the cheeks really changed
    cheek = astronaut_face.landmarks[[50, 280], :2].astype(int)
    for x, y in cheek:
        assert np.abs(out[y - 3:y + 3, x - 3:x + 3].astype(int) - astronaut[y - 3:y + 3, x - 3:x + 3]).mean() > 2


def test_eyes_and_inner_mouth_stay_the_persons(astronaut, astronaut_face):
    # with geometry off, the eye openings are exactly the person's pixels (gaze, blinks)
    out = astronaut.copy()
    render_skin(out, astronaut_face, builtin_skins()[5], SkinSettings(geometry=0.0))
    for eye in regions.EYES:
        c = astronaut_face.landmarks[eye, :2].mean(0).astype(int)
        patch = (slice(c[1] - 1, c[1] + 2), slice(c[0] - 2, c[0] + 3))
        assert np.abs(out[patch].astype(int) - astronaut[patch]).mean() < 4


def test_border_is_seamless(astronaut, astronaut_face):
    import cv2

    out = astronaut.copy()
    moved = render_skin(out, astronaut_face, builtin_skins()[0])

    def edge_energy(img, oval):
        lap = np.abs(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F, ksize=3))
        centre = oval.mean(0)
        vals = []
        for f in (0.9, 0.95, 1.0):
            pts = centre + (oval - centre) * f
            vals += [lap[int(y), int(x)] for x, y in pts if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]]
        return float(np.mean(vals))

    # a seam would show as extra edge energy along the skin's outline
    before = edge_energy(astronaut, astronaut_face.landmarks[regions.FACE_OVAL, :2])
    after = edge_energy(out, moved[regions.FACE_OVAL, :2])
    assert after < 1.5 * before + 2


def test_geometry_moves_features_toward_the_donor_but_keeps_outline(astronaut_face):
    donor = builtin_skins()[1]
    L = astronaut_face.landmarks
    moved = morph_toward(L, donor.landmarks, 1.0)
    np.testing.assert_allclose(moved[regions.FACE_OVAL], L[regions.FACE_OVAL])
    shift = np.linalg.norm(moved[:468, :2] - L[:468, :2], axis=1)
    assert shift.max() > 0.01 * face_scale(L)
    assert shift.max() < 0.25 * face_scale(L)


def test_geometry_keeps_the_persons_expression(astronaut_face):
    # a smile is a wider mouth, speech an open jaw, a blink a flat eye: identity
    # geometry may move and (eyes) scale features, never reshape them
    L = astronaut_face.landmarks
    fs = face_scale(L)
    width = lambda P: np.linalg.norm(P[61, :2] - P[291, :2])  # noqa: E731
    gap = lambda P: np.linalg.norm(P[14, :2] - P[13, :2])  # noqa: E731
    aspect = lambda P, a, b, c, d: np.linalg.norm(P[a, :2] - P[b, :2]) / np.linalg.norm(P[c, :2] - P[d, :2])  # noqa: E731
    for donor in builtin_skins()[:6]:
        moved = morph_toward(L, donor.landmarks, 1.6, 1.5)  # the STRONGER geometry
        assert abs(width(moved) - width(L)) < 0.02 * width(L) + 0.5
        assert abs(gap(moved) - gap(L)) < 0.1 * gap(L) + 0.005 * fs
        for upper, lower, c0, c1 in ((159, 145, 33, 133), (386, 374, 362, 263)):
            assert abs(aspect(moved, upper, lower, c0, c1) - aspect(L, upper, lower, c0, c1)) < 0.02


def test_skin_keeps_the_persons_colour(astronaut, astronaut_face):
    # the donor brings lightness detail only: no colour cast from its lighting (measured before
    # the change: 4.5-5.3 LAB units of cast on the cheeks and lips with these two skins)
    from faceskin.donor import to_lab
    from faceskin.library import SkinLibrary

    L = astronaut_face.landmarks
    library = SkinLibrary.default(seed=0)

    def colour(img, idx):
        return np.array([to_lab(img[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3]).reshape(-1, 3).mean(0)
                         for x, y in L[idx, :2]])[:, 1:].mean(0)

    for skin_id in ("syn015", "syn044"):
        out = astronaut.copy()
        render_skin(out, astronaut_face, library.by_id(skin_id))
        for idx in ([50, 280, 4], regions.LIPS_OUTER):  # cheeks and nose tip, then the lips
            assert np.abs(colour(out, idx) - colour(astronaut, idx)).max() < 3.5


def test_forehead_outline_stays_at_the_hairline(astronaut_face):
    # the outline follows the donor's from the eyes down; at the top of the forehead it is the
    # hairline, and moving it would paint skin over hair
    donor = builtin_skins()[1]
    L = astronaut_face.landmarks
    moved = morph_toward(L, donor.landmarks, 1.6, 1.5)
    shift = np.linalg.norm(moved[regions.FACE_OVAL, :2] - L[regions.FACE_OVAL, :2], axis=1)
    top = L[regions.FACE_OVAL, 1] < L[10, 1] + 0.02 * face_scale(L)
    assert top.any() and shift[top].max() < 0.01 * face_scale(L)
    assert shift.max() > 0.01 * face_scale(L)  # the jaw and cheek line still move


def test_nose_tip_mouth_and_chin_keep_their_height_on_the_face(astronaut_face):
    # how far the mouth and chin sit below the nose reads as how open the jaw is: identity
    # geometry moves them, and the nose tip, across the face only
    L = astronaut_face.landmarks
    top, chin = L[10, :2], L[152, :2]
    down = (chin - top) / np.linalg.norm(chin - top)
    lower = [13, 14, 17, 152, 148, 377]  # lips, chin, jaw
    for donor in builtin_skins()[:4]:
        moved = morph_toward(L, donor.landmarks, 1.6, 1.5)
        along = (moved[lower, :2] - L[lower, :2]) @ down
        assert np.abs(along).max() < 0.005 * face_scale(L)
        # the nose tip only as far as the smoothing of the offsets drags it (0.014-0.019 of the
        # face; taking the donors' nose lengths moved it 0.054-0.073 toward the mouth)
        assert abs((moved[1, :2] - L[1, :2]) @ down) < 0.025 * face_scale(L)
        across = (moved[:, :2] - L[:, :2]) - ((moved[:, :2] - L[:, :2]) @ down)[:, None] * down
        assert np.linalg.norm(across[lower], axis=1).max() > 0.002 * face_scale(L)  # still moves across


def test_eyes_move_but_keep_their_size(astronaut_face):
    # scaling an eye toward the donor's width reads as a change of openness (blinks)
    L = astronaut_face.landmarks
    for donor in builtin_skins()[:4]:
        moved = morph_toward(L, donor.landmarks, 1.6, 1.5)
        for a, b in ((33, 133), (362, 263)):
            assert abs(np.linalg.norm(moved[a, :2] - moved[b, :2]) - np.linalg.norm(L[a, :2] - L[b, :2])) < 0.01 * face_scale(L)
        assert np.linalg.norm(moved[[33, 133, 362, 263], :2] - L[[33, 133, 362, 263], :2], axis=1).max() > 0.002 * face_scale(L)


@pytest.fixture(scope="module")
def widest_open_mouths(detector, landmarker) -> list:
    """GRID lbax4n's three widest-open frames (jawOpen 0.33-0.46), fitted."""
    from conftest import shared_data_or_skip
    from faceskin.videofile import open_video

    clip = shared_data_or_skip() / "videos" / "grid_talking_head_lbax4n.mp4"
    fitted = []
    for i, frame in enumerate(open_video(clip)):
        if i % 4:
            continue
        faces = detector.detect(frame.rgb)
        face = max(faces, key=lambda f: f.size) if faces else None
        if face is not None and landmarker.fit(frame.rgb, face) and face.blendshapes:
            fitted.append((frame.rgb, face))
    widest = sorted(fitted, key=lambda x: -x[1].blendshapes["jawOpen"])[:3]
    assert widest[-1][1].blendshapes["jawOpen"] > 0.3
    return widest


# Share of the opening MediaPipe still reads, measured on those frames (before each fix in brackets):
# - syn015, a longer nose: with the mouth and chin pinned while the nose came down toward them,
#   jawOpen read 0.06 where the original read 0.47; the nose tip is pinned too now. Default
#   0.71-1.02 (0.23-0.43; 0.55-0.91 before the eye-spacing cap), STRONGER mean 0.47 (0.06; 0.31).
# - syn045, wide-set eyes: the person's eyes went 29 % further apart at STRONGER and the same lip
#   gap read as a nearly closed mouth; the eye spacing is capped (skin.EYE_SPACING_CAP).
#   Default 0.68-0.87 (0.41-0.58), STRONGER mean 0.53 (0.23).
@pytest.mark.parametrize("skin_id, default_min, stronger_mean", [("syn015", 0.6, 0.35), ("syn045", 0.6, 0.4)])
def test_skins_that_once_closed_open_mouths_keep_them_open(widest_open_mouths, landmarker, skin_id, default_min,
                                                          stronger_mean):
    import copy

    from faceskin.library import SkinLibrary
    from faceskin.skin import STRONGER

    skin = SkinLibrary.default(seed=0).by_id(skin_id)

    def kept(settings) -> list[float]:
        out = []
        for image, face in widest_open_mouths:
            rendered = image.copy()
            render_skin(rendered, face, skin, settings)
            again = copy.deepcopy(face)
            assert landmarker.fit(rendered, again) and again.blendshapes
            out.append(again.blendshapes["jawOpen"] / face.blendshapes["jawOpen"])
        return out

    assert min(kept(SkinSettings())) > default_min
    assert np.mean(kept(STRONGER)) > stronger_mean


def test_eyes_move_apart_or_together_by_at_most_the_cap(astronaut_face):
    """syn045's eyes are 0.63 of its face height apart (the median skin's 0.53): at STRONGER the
    astronaut's would move 17 % further apart without the cap, 3 % with it."""
    from faceskin import skin as skin_module
    from faceskin.library import SkinLibrary
    from faceskin.skin import EYE_SPACING_CAP, morph_toward

    donor = SkinLibrary.default(seed=0).by_id("syn045")
    L = astronaut_face.landmarks

    def spacing(points: np.ndarray) -> float:
        return float(np.linalg.norm(points[[362, 263], :2].mean(0) - points[[33, 133], :2].mean(0)))

    capped = spacing(morph_toward(L, donor.landmarks, 1.6, 1.5)) / spacing(L)
    assert abs(capped - 1) <= EYE_SPACING_CAP + 0.01
    original = skin_module.EYE_SPACING_CAP
    try:
        skin_module.EYE_SPACING_CAP = float("inf")
        free = spacing(morph_toward(L, donor.landmarks, 1.6, 1.5)) / spacing(L)
    finally:
        skin_module.EYE_SPACING_CAP = original
    assert free > 1.15, free


def _eye_height(points: np.ndarray, landmarks: np.ndarray) -> float:
    """Where the eyes sit along the person's own top-to-chin direction, in px."""
    from faceskin.skin import _down

    centre = (points[[362, 263], :2].mean(0) + points[[33, 133], :2].mean(0)) / 2
    return float(centre @ _down(landmarks))


def test_eyes_keep_their_height_on_the_face(astronaut_face):
    """syn028's eyes sit higher on its face than the astronaut's: at STRONGER they would move up by
    13 % of the distance between the eyes without the cap; with it they stay (skin.EYE_HEIGHT_CAP)."""
    from faceskin import skin as skin_module
    from faceskin.library import SkinLibrary
    from faceskin.skin import EYE_HEIGHT_CAP, morph_toward

    donor = SkinLibrary.default(seed=0).by_id("syn028")
    L = astronaut_face.landmarks
    apart = float(np.linalg.norm(L[[362, 263], :2].mean(0) - L[[33, 133], :2].mean(0)))
    capped = (_eye_height(morph_toward(L, donor.landmarks, 1.6, 1.5), L) - _eye_height(L, L)) / apart
    assert abs(capped) <= EYE_HEIGHT_CAP + 0.01, capped
    original = skin_module.EYE_HEIGHT_CAP
    try:
        skin_module.EYE_HEIGHT_CAP = float("inf")
        free = (_eye_height(morph_toward(L, donor.landmarks, 1.6, 1.5), L) - _eye_height(L, L)) / apart
    finally:
        skin_module.EYE_HEIGHT_CAP = original
    assert free < -0.1, free  # up the face


# London photos whose closed mouths (jawOpen 0.02-0.04) syn009 and syn028 opened to 0.17-0.20 before
# the eye caps: eyes moved up the face and the mouth read as further below them; 0.05-0.06 with them.
@pytest.mark.parametrize("person", ["london_002", "london_010"])
def test_a_closed_mouth_stays_closed_whatever_the_skins_eyes(landmarker, person):
    import copy

    from PIL import Image

    from conftest import shared_data_or_skip
    from faceskin import skin as skin_module
    from faceskin.detect import FaceDetector
    from faceskin.library import SkinLibrary

    image = np.asarray(Image.open(shared_data_or_skip() / "identities" / person / "2.jpg").convert("RGB"))
    face = max(FaceDetector(rotations=(0,), use_centerface=False).detect(image), key=lambda f: f.size)
    assert landmarker.fit(image, face) and face.blendshapes["jawOpen"] < 0.05
    library = SkinLibrary.default(seed=0)

    def jaw_open(skin_id: str) -> float:
        rendered = image.copy()
        render_skin(rendered, face, library.by_id(skin_id))
        again = copy.deepcopy(face)
        assert landmarker.fit(rendered, again) and again.blendshapes
        return again.blendshapes["jawOpen"]

    capped = [jaw_open(s) for s in ("syn009", "syn028")]
    caps = skin_module.EYE_SPACING_CAP, skin_module.EYE_HEIGHT_CAP
    try:
        skin_module.EYE_SPACING_CAP, skin_module.EYE_HEIGHT_CAP = 0.06, float("inf")
        free = [jaw_open(s) for s in ("syn009", "syn028")]
    finally:
        skin_module.EYE_SPACING_CAP, skin_module.EYE_HEIGHT_CAP = caps
    assert max(capped) < face.blendshapes["jawOpen"] + 0.04, (capped, face.blendshapes["jawOpen"])
    assert min(free) > 0.12, free


def test_blinks_read_on_the_skin_as_on_the_person(landmarker):
    """MediaPipe's eyeBlink on skinned London faces (neutral and smiling photos, a different skin
    for each person) follows the originals': with the donor's full detail on the eyelids its
    creases and socket shadows were read as lids closing (r 0.83 on 120 faces). Damping the lids
    alone (``lid_detail=0.3``) gave r 0.89; taking most of the donor's mid-scale shading out of the
    upper face (``mid_detail``, the default since) does as much everywhere. Here, 40 people
    (measured 0.906 against 0.882 with the whole band): the default must track better, at r 0.88
    or more."""
    import copy
    from dataclasses import replace

    from PIL import Image

    from conftest import shared_data_or_skip
    from faceskin.detect import FaceDetector
    from faceskin.library import SkinLibrary

    people = sorted(p for p in (shared_data_or_skip() / "identities").glob("london_*") if p.is_dir())[:40]
    detector = FaceDetector(rotations=(0,), use_centerface=False)  # upright portraits: the quick pass
    library = SkinLibrary.default(seed=0)
    faces = []
    for i, person in enumerate(people):
        for photo in ("1.jpg", "2.jpg"):
            image = np.asarray(Image.open(person / photo).convert("RGB"))
            found = detector.detect(image)
            face = max(found, key=lambda f: f.size) if found else None
            if face is not None and landmarker.fit(image, face) and face.blendshapes:
                faces.append((image, face, library.by_id(library.skins[i].skin_id)))
    assert len(faces) >= 70

    def blink_r(settings: SkinSettings) -> float:
        before, after = [], []
        for image, face, skin in faces:
            rendered = image.copy()
            render_skin(rendered, face, skin, settings)
            again = copy.deepcopy(face)
            if landmarker.fit(rendered, again) and again.blendshapes:
                keys = ("eyeBlinkLeft", "eyeBlinkRight")
                before.append(np.mean([face.blendshapes[k] for k in keys]))
                after.append(np.mean([again.blendshapes[k] for k in keys]))
        return float(np.corrcoef(before, after)[0, 1])

    default, whole = blink_r(SkinSettings()), blink_r(replace(SkinSettings(), mid_detail=1.0))
    assert default >= 0.88 and default > whole + 0.01, (default, whole)


def test_lid_detail_damps_the_donors_detail_around_the_eyes_only(astronaut, astronaut_face):
    from dataclasses import replace

    import cv2

    from faceskin.skin import LID_REACH

    skin = builtin_skins()[3]
    damped, full = astronaut.copy(), astronaut.copy()
    render_skin(damped, astronaut_face, skin, replace(SkinSettings(), lid_detail=0.3))
    render_skin(full, astronaut_face, skin, SkinSettings())
    changed = np.abs(damped.astype(int) - full.astype(int)).max(2) > 2
    L = astronaut_face.landmarks
    eyes = regions.polygon_mask(astronaut.shape[:2], L, [*regions.EYES])
    reach = int(3 * LID_REACH * face_scale(L)) + 1
    near = cv2.dilate(eyes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))) > 0
    assert changed.sum() > 50  # the lids lost most of the donor's detail
    assert not (changed & ~near).any()  # and nothing else changed


def test_keep_lips_gives_the_person_their_own_lips(astronaut, astronaut_face):
    # with geometry off, the lips are the person's pixels with keep_lips, the donor's detail without
    import cv2

    L = astronaut_face.landmarks
    lips = regions.polygon_mask(astronaut.shape[:2], L, [regions.LIPS_OUTER]) > 0
    inner = cv2.dilate(regions.polygon_mask(astronaut.shape[:2], L, [regions.LIPS_INNER]), np.ones((3, 3), np.uint8)) > 0
    # the lips themselves, away from the outline where the hole's edge is blurred and the teeth
    body = cv2.erode(lips.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    body &= ~inner
    assert body.sum() > 50
    kept, painted = astronaut.copy(), astronaut.copy()
    render_skin(kept, astronaut_face, builtin_skins()[5], SkinSettings(geometry=0.0, keep_lips=True))
    render_skin(painted, astronaut_face, builtin_skins()[5], SkinSettings(geometry=0.0))
    diff = lambda img: np.abs(img.astype(int) - astronaut.astype(int)).max(2)[body].mean()  # noqa: E731
    assert diff(kept) < 3 < diff(painted)
    # and nothing outside the lips changed
    near = cv2.dilate(lips.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert not (np.abs(kept.astype(int) - painted.astype(int)).max(2)[~near] > 2).any()


def test_mid_detail_scales_only_the_donors_mid_scale_shading(astronaut, astronaut_face):
    """``mid_detail`` scales the donor's band between DETAIL_SIGMA and shading_sigma (sockets, folds,
    brow haze) above the nose tip: the render at 0.3 lies 30 % of the way from the render without that band to the one
    with all of it, and what the band adds is smooth (the finer texture is the same in all three)."""
    from dataclasses import replace

    import cv2

    from faceskin.donor import DETAIL_SIGMA
    from faceskin.library import default_skins

    skin = default_skins()[10].donor()
    L = astronaut_face.landmarks
    area = regions.polygon_mask(astronaut.shape[:2], L, [regions.FACE_OVAL]) > 0
    area = cv2.erode(area.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # inside the feathered border
    oval = area.copy()
    area[int(L[1, 1]):] = False  # above the nose tip (below it the band fades back in: see mid_detail)
    chin = oval.copy()
    chin[:int(L[17, 1]) + 2] = False  # below the lower lip the band is whole

    def lightness(mid):
        out = astronaut.copy()
        render_skin(out, astronaut_face, skin, replace(SkinSettings(), mid_detail=mid, forehead_detail=1.0))
        return cv2.cvtColor(out.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 0]

    none, part, full = lightness(0.0), lightness(0.3), lightness(1.0)
    band = (full - none)[area]
    assert band.std() > 1.0  # the donor has shading at that scale
    ratio = float(np.dot((part - none)[area], band) / np.dot(band, band))
    assert 0.25 < ratio < 0.35, ratio
    low = (full - none)[chin]
    assert low.std() > 0.5 and np.abs((part - full)[chin]).max() < 2.5  # (up to the uint8 rounding of both)
    high = lambda img: (img - cv2.GaussianBlur(img, (0, 0), DETAIL_SIGMA * face_scale(L) / 2))[area].std()  # noqa: E731
    assert high(full - none) < 0.4 * high(none), (high(full - none), high(none))  # the pores and lines stay


def test_landmark_gap_is_small_on_a_fitted_face_and_large_on_a_mesh_beside_it(astronaut_face):
    """The mesh's five points lie on the detector's for a good fit; a mesh a third of the face
    size to the side (as a fit to a motion-blurred face can be) is measured as that far off."""
    from dataclasses import replace

    from faceskin.skin import landmark_gap

    assert landmark_gap(astronaut_face) < 0.05
    beside = astronaut_face.landmarks + [astronaut_face.size / 3, 0, 0]
    assert abs(landmark_gap(replace(astronaut_face, landmarks=beside)) - 1 / 3) < 0.05
    assert landmark_gap(replace(astronaut_face, keypoints=None)) is None


def test_forehead_detail_scales_the_donors_detail_above_the_brows_only(astronaut, astronaut_face):
    """With ``forehead_detail`` 0.4 the forehead carries 40 % of what the donor's detail adds there
    (its folds), and the face below the brows is the same render."""
    from dataclasses import replace

    import cv2

    from faceskin.library import default_skins

    skin = default_skins()[10].donor()
    L = astronaut_face.landmarks
    oval = regions.polygon_mask(astronaut.shape[:2], L, [regions.FACE_OVAL]) > 0
    oval = cv2.erode(oval.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    brows_top = int(L[[105, 66, 334, 296], 1].min())
    forehead, lower = oval.copy(), oval.copy()
    forehead[brows_top - int(0.1 * face_scale(L)):] = False  # past the ramp (the astronaut is upright)
    lower[:int(L[[33, 263], 1].max()) + 4] = False  # below the eyes

    def lightness(**kw):
        out = astronaut.copy()
        render_skin(out, astronaut_face, skin, replace(SkinSettings(), **kw))
        return cv2.cvtColor(out.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 0]

    bare, part, full = lightness(detail_gain=0.0), lightness(forehead_detail=0.4), lightness(forehead_detail=1.0)
    band = (full - bare)[forehead]
    assert band.std() > 1.0  # the donor has detail there
    ratio = float(np.dot((part - bare)[forehead] - (part - bare)[forehead].mean(), band - band.mean())
                  / np.dot(band - band.mean(), band - band.mean()))
    assert 0.3 < ratio < 0.5, ratio
    below = (part - full)[lower]
    assert np.abs(below - np.median(below)).max() < 1.5  # (the brightness offset and uint8 rounding aside)


def test_the_donors_colour_moves_the_skin_at_most_chroma_limit(astronaut, astronaut_face):
    """A strong colour in the donor's texture (a blush, a cast of its lighting) moves the rendered
    cheek by about ``chroma_limit`` at most, where the skin takes the donor's colour (STRONGER);
    the lips keep the donor's colour whole, and at STRONGEST so do the skin's own eyes."""
    from dataclasses import replace

    import cv2

    from faceskin.donor import from_lab, to_lab
    from faceskin.library import default_skins
    from faceskin.mesh import canonical_mesh
    from faceskin.skin import STRONGER, STRONGEST

    skin = default_skins()[10].donor()
    size = skin.texture.shape[0]
    uv = canonical_mesh().uv * size

    def tinted(centres, da, db, radius):
        lab = to_lab(skin.texture)
        mask = np.zeros((size, size), np.float32)
        for x, y in centres:
            cv2.circle(mask, (int(x), int(y)), radius, 1.0, -1)
        lab[..., 1] += da * mask
        lab[..., 2] += db * mask
        return replace(skin, texture=from_lab(lab), _detail=None)

    L = astronaut_face.landmarks

    def chroma_shift(donor, settings, points):
        a, b = astronaut.copy(), astronaut.copy()
        render_skin(a, astronaut_face, skin, settings)
        render_skin(b, astronaut_face, donor, settings)
        la, lb = to_lab(a), to_lab(b)
        return max(float(np.hypot(*(lb[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2, 1:]
                                    - la[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2, 1:]).reshape(-1, 2).mean(0)))
                   for x, y in L[points, :2])

    red_cheek = tinted(uv[[50]], 30.0, 10.0, int(0.05 * size))
    assert chroma_shift(red_cheek, replace(STRONGER, chroma_limit=None), [50]) > 15.0
    assert chroma_shift(red_cheek, STRONGER, [50]) < 1.2 * STRONGER.chroma_limit
    lips = [0, 17]  # the middle of the upper and the lower lip
    red_lips = tinted(uv[lips], 20.0, 0.0, int(0.03 * size))
    assert chroma_shift(red_lips, STRONGER, lips) > 2 * STRONGER.chroma_limit
    blue_eyes = tinted([uv[regions.RIGHT_EYE].mean(0), uv[regions.LEFT_EYE].mean(0)], -5.0, -30.0, int(0.02 * size))
    irises = [regions.RIGHT_IRIS[0], regions.LEFT_IRIS[0]]  # their centres
    assert chroma_shift(blue_eyes, STRONGEST, irises) > 2 * STRONGEST.chroma_limit
