"""Does a skinned face still read as the person's expression?

The skin keeps the person's eye openings and inner mouth, but the texture and
geometry around them come from the donor, and they change how a face reads: a
donor's dark lip line reads as a parted mouth on closed lips, its lid creases
as eyes half shut, its mouth corners as a weaker smile. On the London photos
the same face read differently under different skins that all hid the person
equally well (jawOpen 0.004 on the original, 0.002 under one skin, 0.18 under
another). So the photo pipeline fits the landmarker on each render that passed
the identity check and prefers one whose mouth opening, smile and blinks read
as the original's (:mod:`faceskin.protect`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from faceskin.skin import SkinSettings

# The blendshapes compared, each with the change that counts as one unit: about the spread of
# that blendshape over the London neutral and smiling photos (sd jawOpen 0.035, eyeBlink 0.06,
# mouthSmile 0.33, halved for the smile: its range is ten times the others'), and for jawOpen
# less: a render kept 0.03 off on a signal of sd 0.035 leaves little of r. At 0.02 (0.03 before),
# one pipeline run over 199 London faces each, jawOpen r 0.873 -> 0.896, blink 0.908 -> 0.909,
# the same time per face.
SCALES = {
    "jawOpen": 0.02,
    "eyeBlinkLeft": 0.05,
    "eyeBlinkRight": 0.05,
    "mouthSmileLeft": 0.15,
    "mouthSmileRight": 0.15,
}


MOUTH = ("jawOpen", "mouthSmileLeft", "mouthSmileRight")
EYES = ("eyeBlinkLeft", "eyeBlinkRight")
# The eyelids' share of the donor's detail when a render's blinks read wrong (SkinSettings.lid_detail).
REPAIR_LID_DETAIL = 0.3


def expression_changes(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float]:
    """Each compared blendshape's change in units of ``SCALES``; inf when either reading is unknown."""
    if not before or not after:
        return {k: math.inf for k in SCALES}
    return {k: abs(after.get(k, math.inf) - before.get(k, math.inf)) / s for k, s in SCALES.items()}


def repaired(settings: SkinSettings, changes: dict[str, float], tolerance: float) -> SkinSettings | None:
    """The same skin settings with one thing given back to the person: their own lips where the mouth
    read wrong, else less of the donor's eyelid detail where the blinks did; None when there is
    nothing left to give back.

    The lips' outline is the person's already (the mouth is moved, never scaled), so their own lip
    texture gives back how open the mouth reads and how it smiles at little cost to the disguise.
    The lids cost more (rendered once with the pipeline's skin on 110 London faces, 16 % of the
    renders rose over the self-check's limit with the lids damped, 10 % with the person's lips),
    so they come second, one at a time: a render that still reads wrong is repaired again, and
    every render is checked again like any other.
    """
    if not settings.keep_lips and any(changes[k] > tolerance for k in MOUTH):
        return replace(settings, keep_lips=True)
    if settings.keep_eyes and settings.lid_detail > REPAIR_LID_DETAIL and any(changes[k] > tolerance for k in EYES):
        return replace(settings, lid_detail=REPAIR_LID_DETAIL)
    return None
