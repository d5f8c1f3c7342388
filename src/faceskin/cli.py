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
from faceskin.faces import FaceOutcome

app = typer.Typer(add_completion=False, no_args_is_help=True, help=(
    "Put privacy-preserving synthetic face skins on every person in photos and videos. "
    "Outputs are altered media: say so when you publish them."))
skins_app = typer.Typer(no_args_is_help=True, help="List the built-in skins.")
app.add_typer(skins_app, name="skins")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

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


def _protect_photo(protector, src: Path, dst: Path, keep_metadata: bool, quality: int, finisher=None):
    from faceskin.imagefile import read_image, write_image

    loaded = read_image(src)
    result, report = protector.protect(loaded.rgb, path=str(src))
    staged = dst
    if finisher is not None:
        result = finisher.mark(result, [f.box for f in report.faces])
        staged = finisher.staging_path(dst)
    write_image(staged, result, loaded, keep_metadata=keep_metadata, quality=quality)
    if finisher is not None:
        finisher.finish(staged, dst, report.faces)
    report.metadata_stripped = not keep_metadata
    for w in loaded.warnings:
        err.print(f"[yellow]warning:[/] {src}: {w}", soft_wrap=True)
    return report


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _video_output(src: Path, output: Optional[Path]) -> Path:
    """``clip.skinned.mp4`` beside the input (or inside ``output`` if it is a folder).

    Inputs in containers we do not write (.webm, .avi, .mpg) become .mkv, which
    holds any audio codec they carry, so the audio can still be copied untouched.
    """
    from faceskin.videofile import OUTPUT_SUFFIXES

    suffix = src.suffix if src.suffix.lower() in OUTPUT_SUFFIXES else ".mkv"
    name = f"{src.stem}.skinned{suffix}"
    if output is None:
        return src.with_name(name)
    return output / name if output.is_dir() else output


def _protect_video(src: Path, output: Optional[Path], *, skin, donor, seed, keep_metadata: bool, audio: bool,
                   crf: float, preset: str, margin: float, report: Optional[Path], quiet: bool,
                   finisher=None) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    from faceskin.video import VideoOptions, for_video, protect_video
    from faceskin.videofile import open_video

    if preset not in X264_PRESETS:
        raise InputError(f"--preset {preset!r}: use one of {', '.join(X264_PRESETS)}")
    dst = _video_output(src, output)
    if finisher is not None:
        finisher.check_output(dst)
    open_video(src)  # a bad input fails here, in a second, before the models load
    protector = for_video(_make_protector(skin, donor, seed))

    class Fps(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:5.1f} frames/s" if speed else "  --- frames/s")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Fps(), TextColumn("ETA"),
               TimeRemainingColumn())
    with Progress(*columns, console=err, disable=quiet, transient=False) as bar:
        task = bar.add_task(src.name, total=None)

        def progress(done: int, total: Optional[int]) -> None:
            bar.update(task, completed=done, total=total)

        try:
            staged = finisher.staging_path(dst) if finisher is not None else dst
            r = protect_video(src, staged, protector=protector, options=VideoOptions(margin=margin), audio=audio,
                              crf=crf, preset=preset, keep_metadata=keep_metadata, progress=progress)
            if finisher is not None:
                # one outcome per track: the label counts people, not face-frames
                outcomes = [FaceOutcome(box=[], score=1.0, method="skin" if t.skin_id else "fallback",
                                        skin_id=t.skin_id, track_id=t.track_id) for t in r.tracks]
                # frames are not yet passed through finisher.mark (watermark/badge): do not claim them
                finisher.finish(staged, dst, outcomes, watermarked=False)
        except BaseException:
            bar.update(task, visible=False)  # the error line alone, not a half-full bar above it
            raise
        bar.update(task, total=r.frames, completed=r.frames)
    if report is not None:
        report.write_text(json.dumps({"tool": "faceskin", "videos": [r.to_dict()]}, indent=2))
    if not quiet:
        ff = r.face_frames
        skins = sorted({t.skin_id for t in r.tracks if t.skin_id})
        detail = (f"{len(r.tracks)} track(s), skins {', '.join(skins) or 'none'}; face-frames: "
                  f"{ff.get('skin', 0)} skinned, {ff.get('blend', 0)} blended, "
                  f"{ff.get('fallback', 0) + ff.get('predicted', 0)} pixelated" if r.tracks else "no faces found")
        out.print(f"{src}: {r.frames} frames, {detail} -> {dst} [{r.seconds:.1f}s, {r.throughput:.1f} frames/s]",
                  soft_wrap=True)


def _make_finisher(no_label: bool, sign_cert: Optional[Path], sign_key: Optional[Path], badge: bool,
                   watermark_frame: bool):
    """Labelling set up before any work: missing signing material fails the run at once."""
    from faceskin.publish import Finisher, LabelOptions

    if no_label and (sign_cert or sign_key):
        raise InputError("--no-label and --sign-cert/--sign-key contradict each other")
    return Finisher(LabelOptions(label=not no_label, sign_cert=str(sign_cert) if sign_cert else None,
                                 sign_key=str(sign_key) if sign_key else None, badge=badge,
                                 watermark_frame=watermark_frame))


@app.command()
def protect(
    inputs: list[Path] = typer.Argument(..., help="Photo(s), a folder of photos, or one video.", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input) or folder."),
    skin: Optional[str] = typer.Option(None, "--skin", help="Force one built-in skin id for every face."),
    donor: Optional[Path] = typer.Option(None, "--donor", help="Donor photo (or folder) of consenting or synthetic people to use as skins."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Make skin choice and fallback noise reproducible."),
    keep_metadata: bool = typer.Option(False, "--keep-metadata", help="Keep EXIF/XMP of the source (off by default: it can identify people and places)."),
    quality: int = typer.Option(92, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report of every face and how it was protected."),
    json_report: Optional[Path] = typer.Option(None, "--json-report", help="Same as --report."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Video: drop the audio (copied unchanged by default)."),
    crf: float = typer.Option(18.0, "--crf", min=0, max=51, help="Video: H.264 quality, lower is better and larger."),
    preset: str = typer.Option("veryfast", "--preset", help="Video: x264 speed preset (ultrafast ... veryslow)."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, max=2.0,
                                 help="Video: grow every pixelated cover by this fraction of the head size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    no_label: bool = typer.Option(False, "--no-label", help="Write no signed content credentials (C2PA)."),
    sign_cert: Optional[Path] = typer.Option(None, "--sign-cert", help="Your own signing certificate chain (PEM)."),
    sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="The private key for --sign-cert (PEM)."),
    badge: bool = typer.Option(False, "--badge", help="Add a visible 'faces altered' badge."),
    watermark_frame: bool = typer.Option(False, "--watermark-frame", help="Watermark the whole frame, not only the faces."),
) -> None:
    """Wrap every face with a synthetic skin; faces that cannot take one are pixelated.

    Every output is signed as altered media (C2PA) and invisibly watermarked;
    run `faceskin keys init` once, or pass --no-label.
    """
    from faceskin.imagefile import SUPPORTED_SUFFIXES, iter_image_files

    report = report or json_report
    try:
        jobs: list[tuple[Path, Path]] = []
        for src in inputs:
            if not src.exists():
                raise InputError(f"{src}: no such file or folder")
            if src.suffix.lower() in VIDEO_SUFFIXES and src.is_file():
                if len(inputs) != 1:
                    raise InputError(f"{src}: videos are protected one per command; give it on its own")
                finisher = _make_finisher(no_label, sign_cert, sign_key, badge, watermark_frame)
                _protect_video(src, output, skin=skin, donor=donor, seed=seed, keep_metadata=keep_metadata,
                               audio=not no_audio, crf=crf, preset=preset, margin=margin, report=report, quiet=quiet,
                               finisher=finisher)
                return
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
        finisher = _make_finisher(no_label, sign_cert, sign_key, badge, watermark_frame)
        for _, dst in jobs:
            finisher.check_output(dst)
        protector = _make_protector(skin, donor, seed)
        reports = []
        for src, dst in jobs:
            r = _protect_photo(protector, src, dst, keep_metadata, quality, finisher)
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


@app.command()
def audit(
    original: Path = typer.Argument(..., help="The original photo, folder or video.", show_default=False),
    protected: Path = typer.Argument(..., help="faceskin's output for it.", show_default=False),
    html: Optional[Path] = typer.Option(None, "--html", help="Write the HTML report here (default: PROTECTED.audit.html)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the JSON report here."),
    gallery: Optional[Path] = typer.Option(None, "--gallery", help="Folder of other photos of the people: run the identification attack."),
    link_with: Optional[Path] = typer.Option(None, "--link-with", help="A second protected output of the same people: can the two be linked?"),
    frame_step: int = typer.Option(1, "--frame-step", min=1, help="Video: scan every Nth frame (default every frame)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict."),
) -> None:
    """Measure what today's recognizers can still do with a protected file; exit 1 on any leak."""
    from faceskin.audit import run_audit_cli

    if html is None:
        html = protected.with_name(protected.name + ".audit.html")
    code = run_audit_cli(original, protected, html, json_out, gallery, quiet, link_with=link_with, frame_step=frame_step)
    raise typer.Exit(code)


keys_app = typer.Typer(no_args_is_help=True, help="Signing keys for the content credentials (C2PA) on outputs.")
app.add_typer(keys_app, name="keys")


@keys_app.command("init")
def keys_init(
    folder: Optional[Path] = typer.Option(None, "--dir", help="Keys folder (default ~/.config/faceskin/keys or $FACESKIN_KEYS_DIR)."),
    force: bool = typer.Option(False, "--force", help="Replace existing keys."),
) -> None:
    """Make a local certificate chain to sign outputs with, for users who have none."""
    from faceskin.keys import CHAIN_FILE, KEY_FILE, default_keys_dir, make_signing_chain

    target = folder or default_keys_dir()
    if not force and (target / KEY_FILE).exists() and (target / CHAIN_FILE).exists():
        out.print(f"signing keys already exist in {target}; keeping them (--force replaces them)")
        return
    try:
        made = make_signing_chain(target, force=force)
    except FaceskinError as exc:
        fail(str(exc))
    out.print(f"signing keys written to {made}; share root-ca.pem with people who verify your files")


@app.command()
def verify(
    files: list[Path] = typer.Argument(..., help="Files to check.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="Root certificate (PEM) to trust."),
    no_watermark: bool = typer.Option(False, "--no-watermark", help="Only read the manifest."),
) -> None:
    """Say whether a file is a labelled faceskin output (exit 0) or not (exit 1)."""
    from faceskin.keys import local_trust_anchor
    from faceskin.verify import LABELLED, describe, verify_file

    try:
        anchor = trust.read_bytes() if trust is not None else local_trust_anchor()
    except OSError as exc:
        fail(f"{trust}: cannot read ({exc.strerror or exc})")
    results = []
    try:
        for f in files:
            if not f.is_file():
                raise InputError(f"{f}: no such file")
            results.append(verify_file(f, trust_anchor_pem=anchor, check_watermark=not no_watermark))
    except FaceskinError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps([r.to_dict() for r in results]))
    else:
        for r in results:
            for line in describe(r):
                out.print(line, soft_wrap=True)
    raise typer.Exit(0 if all(r.verdict == LABELLED for r in results) else 1)


def main() -> None:  # pragma: no cover - entry point convenience
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
