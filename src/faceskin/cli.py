"""The `faceskin` command: a thin shell over the Python API.

User mistakes (missing files, unreadable images, bad options) print one
``error:`` line and exit with status 2; a leak-prone state never exits 0.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from faceskin.errors import FaceskinError, InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "Put privacy-preserving synthetic face skins on every person in photos and videos. "
    "Outputs are altered media: say so when you publish them."))
skins_app = typer.Typer(no_args_is_help=True, help="List and inspect the built-in skins.")
app.add_typer(skins_app, name="skins")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg"}


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def default_output(src: Path) -> Path:
    if src.is_dir():
        return src.with_name(src.name + "-skinned")
    return src.with_name(f"{src.stem}.skinned{src.suffix}")


def _make_protector(skin: Optional[str], donor: Optional[Path], seed: Optional[int]):
    from faceskin.detect import FaceDetector
    from faceskin.landmarks import Landmarker
    from faceskin.library import SkinLibrary, builtin_skins, skins_from_photos
    from faceskin.imagefile import iter_image_files
    from faceskin.protect import ProtectOptions, Protector

    detector, landmarker = FaceDetector(), Landmarker()
    if donor is not None:
        if not donor.exists():
            raise InputError(f"{donor}: donor photo or folder not found")
        paths = iter_image_files(donor) if donor.is_dir() else [donor]
        if not paths:
            raise InputError(f"{donor}: no donor photos in this folder")
        library = SkinLibrary(skins_from_photos(paths, detector, landmarker), seed=seed)
    else:
        library = SkinLibrary(builtin_skins(), seed=seed)
    options = ProtectOptions()
    if skin is not None:
        try:
            library.by_id(skin)
        except KeyError:
            raise InputError(f"unknown skin id {skin!r} (see `faceskin skins list`)") from None
        options.force_skin_id = skin
    return Protector(detector=detector, landmarker=landmarker, library=library, options=options, seed=seed)


def _protect_photo(protector, src: Path, dst: Path, keep_metadata: bool, quality: int):
    from faceskin.imagefile import read_image, write_image

    loaded = read_image(src)
    result, report = protector.protect(loaded.rgb, path=str(src))
    write_image(dst, result, loaded, keep_metadata=keep_metadata, quality=quality)
    report.metadata_stripped = not keep_metadata
    return report


@app.command()
def protect(
    inputs: list[Path] = typer.Argument(..., help="Photo(s) or a folder of photos.", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input) or folder."),
    skin: Optional[str] = typer.Option(None, "--skin", help="Force one built-in skin id for every face."),
    donor: Optional[Path] = typer.Option(None, "--donor", help="Donor photo (or folder) of consenting or synthetic people to use as skins."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Make skin choice and fallback noise reproducible."),
    keep_metadata: bool = typer.Option(False, "--keep-metadata", help="Keep EXIF/XMP of the source (off by default: it can identify people and places)."),
    quality: int = typer.Option(92, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report of every face and how it was protected."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
) -> None:
    """Wrap every face with a synthetic skin; faces that cannot take one are pixelated."""
    from faceskin.imagefile import SUPPORTED_SUFFIXES, iter_image_files

    try:
        jobs: list[tuple[Path, Path]] = []
        for src in inputs:
            if not src.exists():
                raise InputError(f"{src}: no such file or folder")
            if src.suffix.lower() in VIDEO_SUFFIXES:
                raise InputError(f"{src}: video input is not supported by this version yet")
        if len(inputs) == 1 and inputs[0].is_file():
            jobs.append((inputs[0], output or default_output(inputs[0])))
        else:
            if output is not None and output.exists() and not output.is_dir():
                raise InputError(f"{output}: several inputs need an output folder, not a file")
            for src in inputs:
                files = iter_image_files(src) if src.is_dir() else [src]
                if src.is_dir() and not files:
                    raise InputError(f"{src}: no supported photos in this folder ({', '.join(sorted(SUPPORTED_SUFFIXES))})")
                folder = output or default_output(src if src.is_dir() else src.parent)
                jobs += [(f, folder / f.name) for f in files]
            for _, dst in jobs:
                dst.parent.mkdir(parents=True, exist_ok=True)
        protector = _make_protector(skin, donor, seed)
        reports = []
        for src, dst in jobs:
            r = _protect_photo(protector, src, dst, keep_metadata, quality)
            reports.append(r)
            if not quiet:
                if not r.faces:
                    out.print(f"{src}: no faces found; written to {dst} unchanged apart from metadata")
                else:
                    fb = f", {r.fallbacks} pixelated ({'; '.join(sorted({f.reason for f in r.faces if f.method == 'fallback'}))})" if r.fallbacks else ""
                    out.print(f"{src}: {len(r.faces)} face(s): {r.skinned} skinned{fb} -> {dst} [{r.seconds:.2f}s]")
        if report is not None:
            report.write_text(json.dumps({"tool": "faceskin", "images": [r.to_dict() for r in reports]}, indent=2))
    except FaceskinError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; no partial output was left under the final name", 130)


@skins_app.command("list")
def skins_list() -> None:
    """List the built-in skins with their skin tone."""
    from faceskin.library import builtin_skins

    for s in builtin_skins():
        out.print(f"{s.skin_id}\tL={s.tone[0]:.0f} a={s.tone[1]:.0f} b={s.tone[2]:.0f}\t{s.source}")


def main() -> None:  # pragma: no cover - entry point convenience
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
