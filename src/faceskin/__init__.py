"""faceskin: privacy-preserving face skins for photos and pre-recorded video."""

from faceskin.faces import Face, FaceOutcome, ImageReport
from faceskin.protect import ProtectOptions, Protector, protect_image

__version__ = "0.1.0"
__all__ = ["Face", "FaceOutcome", "ImageReport", "ProtectOptions", "Protector", "protect_image", "__version__"]
