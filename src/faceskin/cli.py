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
skins_app = typer.Typer(no_args_is_help=True, help="The skin library: built-in synthetic skins and consented skins.")
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


def skin_seed_or(skin_seed: Optional[int], seed: Optional[int]) -> Optional[int]:
    """--skin-seed seeds the skin draws alone; without it --seed seeds them (and the fallback noise)."""
    return skin_seed if skin_seed is not None else seed


def _make_protector(skin: Optional[str], donor: Optional[Path], seed: Optional[int], skin_seed: Optional[int] = None,
                    key: Optional[str] = None):
    from faceskin.detect import FaceDetector
    from faceskin.landmarks import Landmarker
    from faceskin.library import SkinLibrary, builtin_skins, default_skins, skins_from_photos
    from faceskin.imagefile import iter_image_files
    from faceskin.protect import ProtectOptions, Protector

    detector, landmarker = FaceDetector(), Landmarker()
    if donor is not None:
        if not donor.exists():
            raise InputError(f"{donor}: donor photo or folder not found")
        paths = iter_image_files(donor) if donor.is_dir() else [donor]
        if not paths:
            raise InputError(f"{donor}: no donor photos in this folder")
        library = SkinLibrary(skins_from_photos(paths, detector, landmarker), seed=skin_seed_or(skin_seed, seed),
                              key=key)
    else:  # the curated default set of the skin model (`faceskin skins list`)
        library = SkinLibrary(default_skins(), seed=skin_seed_or(skin_seed, seed), key=key)
    options = ProtectOptions()
    if skin is not None:
        try:
            library.by_id(skin)
        except KeyError:
            try:  # the older donor set is still wearable by id
                library.skins.append(next(d for d in builtin_skins() if d.skin_id == skin))
            except StopIteration:
                raise InputError(f"unknown skin id {skin!r} (see `faceskin skins list`)") from None
        options.force_skin_id = skin
    return Protector(detector=detector, landmarker=landmarker, library=library, options=options, seed=seed)


def _protect_photo(protector, src: Path, dst: Path, keep_metadata: bool, quality: int, finisher=None, gate=None):
    """Protect one photo; returns its report and where the output went (``dst``, or the leaked name on an audit leak)."""
    from faceskin.imagefile import read_image, write_image

    loaded = read_image(src)
    result, report = protector.protect(loaded.rgb, path=str(src))
    staged = dst
    if finisher is not None:
        result = finisher.mark(result, [f.box for f in report.faces])
        staged = finisher.staging_path(dst)
    if gate is not None:
        staged = gate.staging_path(staged, dst)
    write_image(staged, result, loaded, keep_metadata=keep_metadata, quality=quality)
    target = gate.check(src, staged, dst) if gate is not None else dst
    if finisher is not None:
        finisher.finish(staged, target, report.faces)
    if gate is not None:
        gate.settle(staged, target)
    report.metadata_stripped = not keep_metadata
    for w in loaded.warnings:
        err.print(f"[yellow]warning:[/] {src}: {w}", soft_wrap=True)
    return report, target


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


def _protect_video(src: Path, output: Optional[Path], *, skin, donor, seed, skin_seed=None, keep_metadata: bool, audio: bool,
                   crf: float, preset: str, margin: float, report: Optional[Path], quiet: bool,
                   finisher=None, gate=None) -> None:
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
    protector = for_video(_make_protector(skin, donor, seed, skin_seed))

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
            if gate is not None:
                staged = gate.staging_path(staged, dst)
            r = protect_video(src, staged, protector=protector, options=VideoOptions(margin=margin), audio=audio,
                              crf=crf, preset=preset, keep_metadata=keep_metadata, progress=progress,
                              frame_hook=finisher.mark if finisher is not None else None)
            # before the final name exists: a leaking output is published only under its .leaked name
            target = dst if gate is None else gate.check(src, staged, dst, progress=lambda done, total: bar.update(
                task, description=f"auditing {src.name}", completed=done, total=total))
            if finisher is not None:
                # one outcome per track: the label counts people, not face-frames
                outcomes = [FaceOutcome(box=[], score=1.0, method="skin" if t.skin_id else "fallback",
                                        skin_id=t.skin_id, track_id=t.track_id) for t in r.tracks]
                # every frame went through finisher.mark (badge, watermark in each protected region)
                finisher.finish(staged, target, outcomes, watermarked=True)
            if gate is not None:
                gate.settle(staged, target)
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
                  f"{ff.get('fallback', 0) + ff.get('predicted', 0)} covered" if r.tracks else "no faces found")
        out.print(f"{src}: {r.frames} frames, {detail} -> {target} [{r.seconds:.1f}s, {r.throughput:.1f} frames/s]",
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


def _make_gate(audit_output: bool, audit_report: Optional[Path], outputs: int, quiet: bool):
    """The --audit gate, set up before any work: its models load (or fail) first, and a bad report path fails at once."""
    if not audit_output and audit_report is None:
        return None
    from faceskin.audit import AuditGate

    return AuditGate(audit_report, outputs=outputs, say=(lambda s: None) if quiet else (lambda s: out.print(s, markup=False)),
                     alarm=lambda s: err.print(s, style="bold red", markup=False))


@app.command()
def protect(
    inputs: list[Path] = typer.Argument(..., help="Photo(s), a folder of photos, or one video.", show_default=False),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input) or folder."),
    skin: Optional[str] = typer.Option(None, "--skin", help="Force one skin id for every face (`faceskin skins list`; consented c-... ids too)."),
    donor: Optional[Path] = typer.Option(None, "--donor", help="Donor photo (or folder) of consenting or synthetic people to use as skins."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Make skin choice and fallback noise reproducible."),
    skin_seed: Optional[int] = typer.Option(None, "--skin-seed", help="Make the skin draws reproducible (default: fresh skins every run, so outputs cannot be linked)."),
    key: Optional[str] = typer.Option(None, "--key", envvar="FACESKIN_SKIN_KEY", help="Secret key: the same person gets the same skin in every file made with it (continuity; see README on linkability)."),
    keep_metadata: bool = typer.Option(False, "--keep-metadata", help="Keep EXIF/XMP of the source (off by default: it can identify people and places)."),
    quality: int = typer.Option(92, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report of every face and how it was protected."),
    json_report: Optional[Path] = typer.Option(None, "--json-report", help="Same as --report."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Video: drop the audio (copied unchanged by default)."),
    crf: float = typer.Option(18.0, "--crf", min=0, max=51, help="Video: H.264 quality, lower is better and larger."),
    preset: str = typer.Option("veryfast", "--preset", help="Video: x264 speed preset (ultrafast ... veryslow)."),
    margin: float = typer.Option(0.1, "--margin", min=0.0, max=2.0,
                                 help="Video: grow every fallback cover by this fraction of the head size."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors."),
    no_label: bool = typer.Option(False, "--no-label", help="Write no signed content credentials (C2PA)."),
    sign_cert: Optional[Path] = typer.Option(None, "--sign-cert", help="Your own signing certificate chain (PEM)."),
    sign_key: Optional[Path] = typer.Option(None, "--sign-key", help="The private key for --sign-cert (PEM)."),
    badge: bool = typer.Option(False, "--badge", help="Add a visible 'faces altered' badge."),
    watermark_frame: bool = typer.Option(False, "--watermark-frame", help="Watermark the whole frame, not only the faces."),
    audit_output: bool = typer.Option(False, "--audit", help="Audit each output against its input before publishing it; on a leak keep it only as NAME.leaked.EXT and exit 1."),
    audit_report: Optional[Path] = typer.Option(None, "--audit-report", help="With --audit (implied): write the audit reports (HTML + JSON) to this folder, or this file for one output. Default: only for a leak, beside the kept file."),
) -> None:
    """Wrap every face with a synthetic skin; faces that cannot take one are covered.

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
                if key is not None:
                    raise InputError("--key (keyed skin continuity) works on photos only for now; videos draw skins per run")
                gate = _make_gate(audit_output, audit_report, 1, quiet)
                _protect_video(src, output, skin=skin, donor=donor, seed=seed, skin_seed=skin_seed, keep_metadata=keep_metadata,
                               audio=not no_audio, crf=crf, preset=preset, margin=margin, report=report, quiet=quiet,
                               finisher=finisher, gate=gate)
                if gate is not None and gate.leaked:
                    raise typer.Exit(1)
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
        gate = _make_gate(audit_output, audit_report, len(jobs), quiet)
        protector = _make_protector(skin, donor, seed, skin_seed, key)
        reports = []
        for src, dst in jobs:
            r, dst = _protect_photo(protector, src, dst, keep_metadata, quality, finisher, gate)
            reports.append(r)
            if not quiet:
                if not r.faces:
                    out.print(f"{src}: no faces found; written to {dst} unchanged apart from metadata")
                else:
                    fb = f", {r.fallbacks} covered ({'; '.join(sorted({f.reason for f in r.faces if f.method == 'fallback'}))})" if r.fallbacks else ""
                    worn = sorted({f.skin_id for f in r.faces if f.skin_id})
                    skins = f" (skins {', '.join(worn)})" if worn else ""
                    eyes = sum(f.strength == "strongest" for f in r.faces)
                    if eyes:
                        skins += f", {eyes} with the skin's own eyes (gaze and blinks not the person's)"
                    out.print(f"{src}: {len(r.faces)} face(s): {r.skinned} skinned{skins}{fb} -> {dst} [{r.seconds:.2f}s]")
        if report is not None:
            report.write_text(json.dumps({"tool": "faceskin", "images": [r.to_dict() for r in reports]}, indent=2))
        if gate is not None and gate.leaked:
            raise typer.Exit(1)
    except FaceskinError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted; no partial output was left under the final name", 130)


@skins_app.command("list")
def skins_list(
    group: Optional[str] = typer.Option(None, "--tone", help="Only this tone group (light, medium-light, medium, medium-dark, dark)."),
    legacy: bool = typer.Option(False, "--legacy", help="Also list the older donor skins (single synthetic photos)."),
) -> None:
    """List the default skins (id, seed, tone group, measured traits) and your consented skins (tab-separated)."""
    from faceskin.consent import ConsentStore
    from faceskin.library import TONE_GROUPS, builtin_skins, default_skins

    if group is not None and group not in {g for g, _ in TONE_GROUPS}:
        fail(f"--tone {group!r}: use one of {', '.join(g for g, _ in TONE_GROUPS)}")
    skins = [s for s in default_skins() if group is None or s.tone_group == group]
    typer.echo("id\tseed\ttone group\tL a b (cheeks)\tbeard shadow\tfine detail\twidth/height")
    for s in skins:
        a = s.attributes
        typer.echo(f"{s.skin_id}\t{s.seed}\t{s.tone_group}\t{s.tone[0]:.0f} {s.tone[1]:.0f} {s.tone[2]:.0f}\t"
                  f"{a.get('beard_shadow', float('nan')):.1f}\t{a.get('fine_detail', float('nan')):.2f}\t"
                  f"{a.get('width_ratio', float('nan')):.2f}")
    if legacy:
        for d in builtin_skins():
            typer.echo(f"{d.skin_id}\t-\tlegacy donor\t{d.tone[0]:.0f} {d.tone[1]:.0f} {d.tone[2]:.0f}\t{d.source}")
    for r in ConsentStore().records():
        state = "EXPIRED" if r.expired() else f"until {r.expires}"
        typer.echo(f"{r.skin_id}\t-\tconsented\t{r.scope}; {state}")
    typer.echo(f"{len(skins)} default skins (drawn from faceskin's skin model; they belong to nobody)")


def _skin_or_fail(skin_id: str):
    from faceskin.consent import ConsentError
    from faceskin.library import find_skin

    try:
        return find_skin(skin_id)
    except KeyError:
        fail(f"unknown skin id {skin_id!r} (see `faceskin skins list`)")
    except ConsentError as exc:
        fail(str(exc))


def _write_picture(path: Path, rgb) -> None:
    from faceskin.imagefile import SUPPORTED_SUFFIXES
    from PIL import Image

    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        fail(f"{path}: use one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    if not path.parent.is_dir():
        fail(f"{path.parent}: no such folder")
    Image.fromarray(rgb).save(path, quality=92)


@skins_app.command("show")
def skins_show(
    skin_id: str = typer.Argument(..., help="Skin id (syn001 ..., or a consented c-... id).", show_default=False),
    output: Path = typer.Option(..., "-o", "--output", help="Preview image to write (.jpg, .png).", show_default=False),
    size: int = typer.Option(384, "--size", min=64, max=2048, help="Preview side in pixels."),
) -> None:
    """Write a frontal preview of one skin and print what is known about it."""
    from faceskin.library import default_skins, preview

    entry = next((s for s in default_skins() if s.skin_id == skin_id), None)
    skin = entry if entry is not None else _skin_or_fail(skin_id)
    _write_picture(output, preview(skin, size))
    if entry is not None:
        traits = ", ".join(f"{k} {v:.2f}" for k, v in entry.attributes.items())
        out.print(f"{skin_id}: skin model seed {entry.seed}, tone group {entry.tone_group}; {traits} -> {output}")
    else:
        out.print(f"{skin_id}: {skin.source} -> {output}")


@skins_app.command("sheet")
def skins_sheet(
    output: Path = typer.Option(..., "-o", "--output", help="Contact sheet to write (.jpg, .png).", show_default=False),
    count: int = typer.Option(24, "--count", min=1, help="How many skins (spread evenly over the default set)."),
    columns: int = typer.Option(6, "--columns", min=1, help="Skins per row."),
    size: int = typer.Option(192, "--size", min=64, max=1024, help="Side of each portrait in pixels."),
    ids: Optional[str] = typer.Option(None, "--ids", help="Comma-separated skin ids instead of an even spread."),
    no_labels: bool = typer.Option(False, "--no-labels", help="No captions under the portraits."),
) -> None:
    """Write a contact sheet of default skins (spread over all skin tones)."""
    import numpy as np

    from faceskin.library import contact_sheet, default_skins

    skins = default_skins()
    if ids:
        by_id = {s.skin_id: s for s in skins}
        chosen = [by_id.get(i.strip()) or _skin_or_fail(i.strip()) for i in ids.split(",") if i.strip()]
    else:  # the set is ordered light to dark: an even spread covers every tone
        chosen = [skins[int(i)] for i in np.unique(np.linspace(0, len(skins) - 1, min(count, len(skins))).round())]
    _write_picture(output, contact_sheet(chosen, columns=columns, size=size, labels=not no_labels))
    out.print(f"{len(chosen)} skins -> {output}")


@skins_app.command("add")
def skins_add(
    photo: Path = typer.Argument(..., help="Photo of the consenting person: exactly one face, facing the camera.", show_default=False),
    consent: str = typer.Option(..., "--consent", help="The person's consent, verbatim.", show_default=False),
    who: str = typer.Option(..., "--who", help="Who consented (as they ask to be named; not used in the skin id).", show_default=False),
    scope: str = typer.Option("faceskin skins, any purpose the consent states", "--scope", help="What the skin may be used for."),
    granted: Optional[str] = typer.Option(None, "--date", help="Date consent was given, YYYY-MM-DD (default today)."),
    expires: str = typer.Option(..., "--expires", help="Date after which the skin must not be used, YYYY-MM-DD.", show_default=False),
) -> None:
    """Make a skin from a consenting person's photo; store it with the consent record and hashes."""
    from faceskin.consent import ConsentStore, parse_date, skin_from_photo
    from faceskin.detect import FaceDetector
    from faceskin.imagefile import read_image
    from faceskin.landmarks import Landmarker

    try:
        if not photo.is_file():
            raise InputError(f"{photo}: no such file")
        until = parse_date(expires, "--expires")
        given = parse_date(granted, "--date") if granted else None
        data = photo.read_bytes()
        rgb = read_image(photo).rgb
        donor = skin_from_photo(rgb, FaceDetector(), Landmarker(), name=str(photo))
        skin, record = ConsentStore().add(donor, data, who=who, statement=consent, scope=scope, expires=until,
                                          granted=given)
    except FaceskinError as exc:
        fail(str(exc))
    out.print(f"consented skin {skin.skin_id} added (consent given {record.granted}, expires {record.expires}, "
              f"photo sha256 {record.photo_sha256[:16]}...); use it with --skin {skin.skin_id}")


@skins_app.command("remove")
def skins_remove(skin_id: str = typer.Argument(..., help="Consented skin id (c-...).", show_default=False)) -> None:
    """Withdraw a consented skin: delete the skin and its consent record."""
    from faceskin.consent import ConsentStore

    try:
        ConsentStore().remove(skin_id)
    except FaceskinError as exc:
        fail(str(exc))
    out.print(f"consented skin {skin_id} removed")


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
