"""Named landmark index sets of MediaPipe's 478-point face mesh.

The skin keeps the person's own eye openings and inner mouth (so gaze,
blinks, teeth and tongue stay real) and treats brows and lips as features
rather than skin when it estimates lighting. These contours are the standard
MediaPipe FaceMesh connection loops, listed in drawing order.
"""

from __future__ import annotations

import cv2
import numpy as np

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
# "right"/"left" are the subject's; in an un-mirrored photo the subject's right eye is on the image left.
RIGHT_EYE = [33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7]
LEFT_EYE = [263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249]
RIGHT_BROW = [70, 63, 105, 66, 107, 55, 65, 52, 53, 46]
LEFT_BROW = [300, 293, 334, 296, 336, 285, 295, 282, 283, 276]
LIPS_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146]
LIPS_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95]
NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 294, 278, 344, 440, 275, 45, 220, 115, 48, 64,
        129, 209, 49, 131, 134, 51, 3, 196, 122, 193, 417, 351, 419, 248, 281, 363, 360, 279, 358, 429, 437]
NOSTRILS = [[79, 166, 59, 75, 60, 20, 238, 239, 79], [309, 392, 289, 305, 290, 250, 458, 459, 309]]
RIGHT_IRIS = list(range(468, 473))
LEFT_IRIS = list(range(473, 478))

EYES = (RIGHT_EYE, LEFT_EYE)
BROWS = (RIGHT_BROW, LEFT_BROW)


def polygon_mask(shape: tuple[int, int], points: np.ndarray, loops, value: int = 255) -> np.ndarray:
    """Filled mask of the given landmark loops (each a list of indices into ``points``)."""
    mask = np.zeros(shape, np.uint8)
    for loop in loops:
        poly = np.round(points[loop, :2] * 4).astype(np.int32)
        cv2.fillPoly(mask, [poly], value, lineType=cv2.LINE_AA, shift=2)
    return mask
