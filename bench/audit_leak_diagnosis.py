"""Why does the audit count a leak in faceskin's own output? One line per leaked face.

Protects a clip with the video pipeline's defaults (as ``faceskin protect
--no-label`` does), recording for every frame how each track's face was
protected (skin, blend, fallback cover, predicted cover; the fallback reason;
the box the cover was drawn around), then audits the output and matches each
leaked face of the audit to the protect run's region in that frame by box
overlap. For each counted recognizer it prints the similarity of the
protected face to the original, the recognizer's threshold, and the
similarity of the original to its closest identity-free cover (the audit's
"no closer than a cover" control): a leak is a match that is closer than
both the threshold and that control.

    python bench/audit_leak_diagnosis.py [--clip group_indoor_5people_3s] [--protected OUT.mp4] [--work DIR]

``--protected`` audits an existing output instead (the per-frame protect
columns are then empty). Needs the ``eval`` extra and ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.environ.get("FACESKIN_SRC") or str(ROOT / "src"))

from faceskin.audit import Auditor, audit, write_json  # noqa: E402
from faceskin.detect import box_iou  # noqa: E402

DATA = Path(os.environ.get("FACESKIN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def protect_recording(src: Path, out: Path) -> tuple[dict[int, list[dict]], dict]:
    """Protect ``src`` with the defaults; per frame, each protected region and how it was protected."""
    from faceskin.library import SkinLibrary
    from faceskin.protect import Protector
    from faceskin.video import VideoProtector, for_video

    try:
        protector = Protector(seed=0)
    except (FileNotFoundError, KeyError) as exc:
        print(f"(default skin set unavailable: {exc}; built-in donor skins)")
        protector = Protector(library=SkinLibrary.builtin(seed=0), seed=0)
    video = VideoProtector(for_video(protector), seed=0)
    frames: dict[int, list[dict]] = {}
    finish = video._finish

    def recording_finish(rec):
        before = {tid: Counter(video._states[tid].report.frames) for tid in rec.entries}
        image = finish(rec)
        rows = []
        for tid, e in rec.entries.items():
            done = video._states[tid].report.frames - before[tid]
            method = next(iter(done), "?")
            rows.append({"track": tid, "method": method, "reason": e.reason, "detected": e.detected,
                         "box": np.asarray(e.face.box, np.float64), "skin": video._states[tid].report.skin_id})
        rows += [{"track": None, "method": f"extra cover ({why})", "reason": why, "detected": False,
                  "box": np.asarray(face.box, np.float64), "skin": None} for why, face in rec.extra]
        frames[rec.index] = rows
        return image

    video._finish = recording_finish
    report = video.run(src, out, audio=False)
    margin = max(video.options.margin, video.protector.options.fallback_margin)
    return frames, {"report": report.to_dict(), "cover_margin": margin}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", default="group_indoor_5people_3s")
    ap.add_argument("--protected", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="audit-diagnosis-"))
    work.mkdir(parents=True, exist_ok=True)
    src = DATA / "videos" / f"{args.clip}.mp4"
    frames: dict[int, list[dict]] = {}
    info: dict = {}
    out = args.protected
    if out is None:
        out = work / f"{args.clip}.skinned.mp4"
        frames, info = protect_recording(src, out)
        print(f"protected -> {out}; cover margin {info['cover_margin']}; face-frames "
              f"{info['report']['face_frames']}")
    result = audit(src, out, auditor=Auditor())
    write_json(result, work / f"{args.clip}.audit.json")
    print(result.verdict())
    print(f"audit JSON: {work / f'{args.clip}.audit.json'}\n")
    recs = {r["name"]: r for r in result.recognizers}
    print("| frame | audit track | face px | found by | audit state | protect track | method | reason | "
          "protect box px | recognizer: similarity / threshold / closest cover |")
    print("|---:|---:|---:|---|---|---:|---|---|---:|---|")
    methods = Counter()
    for f in (f for f in result.faces if f.leaked):
        rows = frames.get(f.item, [])
        best, iou = None, 0.0
        for row in rows:
            v = float(box_iou(np.asarray(f.box), row["box"])[0, 0])
            if v > iou:
                best, iou = row, v
        if best is not None:
            block = f"{best['box'][2] - best['box'][0]:.0f}"
            who = (f"{best['track']} ({best['skin'] or 'no skin'}, IoU {iou:.2f})" if best["track"] is not None
                   else f"- (IoU {iou:.2f})")
            method, reason = best["method"], best["reason"] or "-"
        else:
            who, method, reason, block = "-", "not protected here" if frames else "?", "-", "-"
        methods[method] += 1
        figures = "; ".join(
            f"{n}: {f.similarity[n]:.3f} / {'>=' if recs[n]['higher_is_similar'] else '<='}{recs[n]['threshold']} / "
            f"{f.cover_similarity.get(n, float('nan')):.3f}" for n in f.counted)
        print(f"| {f.item} | {f.track} | {f.size:.0f} | {f.found_by} | {f.state} | {who} | {method} | {reason} | "
              f"{block} | {figures} |")
    print(f"\nleaked faces by protect method: {dict(methods)}")


if __name__ == "__main__":
    main()
