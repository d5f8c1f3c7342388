"""The audit as one HTML page a non-specialist can read, and that works offline forever.

Self-contained on purpose: the "over time" plot is a PNG and the thumbnails
JPEGs, embedded as base64 ``data:`` URLs, the histograms inline SVG, the style sheet is inline and there is no
script, font or link to fetch. The page opens from a USB stick, an air-gapped
machine or an e-mail attachment the same way, and opening it tells nobody
anything.

Only the PROTECTED file appears in it: a report about protecting faces must
not become one more copy of the unprotected ones. (A thumbnail of a leaked
frame does show what leaked; the page says so.)

The "over time" plot is drawn with matplotlib's object API (``Figure`` +
``FigureCanvasAgg``), never ``pyplot``, so no global backend is switched in
the caller's process.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from faceskin.audit import (
    AuditResult,
    FaceCheck,
    _atomic_write_text,
    format_time,
    ordinal,
)
from faceskin.errors import FaceskinError

# one colour per track (tab10), leaks in red, thresholds in black
_LEAK = "#c62828"
_OK = "#2e7d32"
_WEAK = "#ef6c00"


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _x(result: AuditResult, f: FaceCheck) -> float:
    return f.time if f.time is not None else f.item


def similarity_plot(result: AuditResult) -> str | None:
    """Similarity of each face to its original over time, one panel per recognizer, thresholds drawn."""
    from matplotlib.figure import Figure

    if not result.faces:
        return None
    recs = result.recognizers
    height = 2.3 * len(recs) + 0.6
    fig = Figure(figsize=(10, height))
    # fixed margins, not constrained layout: the layout solver took half the page's time (audit overhead)
    fig.subplots_adjust(left=0.09, right=0.99, bottom=0.55 / height, top=1 - 0.45 / height, hspace=0.12)
    axes = fig.subplots(len(recs), 1, sharex=True, squeeze=False)[:, 0]
    by_track: dict[int, list[FaceCheck]] = defaultdict(list)
    for f in result.faces:
        by_track[f.track].append(f)
    video = result.media == "video"
    many = len(by_track) > 10
    for ax, rec in zip(axes, recs):
        name = rec["name"]
        for i, (tid, fs) in enumerate(sorted(by_track.items())):
            xs = [_x(result, f) for f in fs]
            ys = [f.similarity.get(name, np.nan) for f in fs]
            colour = "#607d8b" if many else f"C{i % 10}"
            if video and len(fs) > 1:
                ax.plot(xs, ys, "-", lw=1.2, color=colour, label=None if many else f"track {tid}")
            else:
                ax.plot(xs, ys, "o", ms=3, color=colour, label=None if many or not video else f"track {tid}")
        hit = [f for f in result.faces if f.leaked and name in f.counted]
        if hit:
            ax.plot([_x(result, f) for f in hit], [f.similarity[name] for f in hit], "o", ms=4, color=_LEAK,
                    label="still recognised")
        weak = [f for f in result.faces if name in f.matched and not (f.leaked and name in f.counted)]
        if weak:
            ax.plot([_x(result, f) for f in weak], [f.similarity[name] for f in weak], "o", ms=3, mfc="none",
                    color=_WEAK, label="matched, discounted (see below)")
        ax.axhline(rec["threshold"], color="black", lw=1, ls="--")
        side = "above" if rec["higher_is_similar"] else "below"
        ax.set_ylabel(f"{name}\n{'cosine' if rec['higher_is_similar'] else 'distance'}")
        ax.text(0.995, 0.95, f"match {side} {rec['threshold']}", transform=ax.transAxes, ha="right", va="top",
                fontsize=8)
        if not rec["higher_is_similar"]:
            ax.invert_yaxis()  # "more similar" is up in every panel
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)" if video else "photo number")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, labels, fontsize=8, ncol=min(6, len(labels)), loc="lower left")
    fig.suptitle("Similarity of each protected face to the original face (up = more alike; dashed = match threshold)",
                 fontsize=10)
    return _png(fig)


def histogram_svg(result: AuditResult, bins: int = 30) -> str | None:
    """Distribution of the similarities per recognizer against its threshold, as inline SVG.

    Drawn here, not by matplotlib, which spent 0.6-1.2 s on
    the four small panels (tick layout, Agg rendering, PNG encoding) on the
    shared 2-core machine, which alone made the report 21 % of protect time
    for photos (8 identity photos: 5.3 s of report against 25.3 s of
    protecting); these take a few milliseconds.
    """
    if not result.faces:
        return None
    recs = result.recognizers
    pw, ph, gap, top, bottom, left = 230, 150, 14, 18, 30, 30
    width = left + len(recs) * (pw + gap)
    height = top + ph + bottom
    out = [f"<svg class='plot' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' "
           f"height='{height}' role='img' aria-label='histograms of similarity per recognizer' "
           "font-family='sans-serif'>"]
    for i, rec in enumerate(recs):
        x0 = left + i * (pw + gap)
        vals = np.array([f.similarity[rec["name"]] for f in result.faces if rec["name"] in f.similarity])
        t = rec["threshold"]
        if not len(vals):
            continue
        lo, hi = float(min(vals.min(), t)) - 0.02, float(max(vals.max(), t)) + 0.02
        edges = np.linspace(lo, hi, bins + 1)
        bad = vals >= t if rec["higher_is_similar"] else vals <= t
        n_ok = np.histogram(vals[~bad], edges)[0]
        n_bad = np.histogram(vals[bad], edges)[0]
        peak = max(1, int((n_ok + n_bad).max()))
        bw = pw / bins

        def sx(v: float) -> float:
            return x0 + (v - lo) / (hi - lo) * pw

        out.append(f"<rect x='{x0}' y='{top}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>")
        for k in range(bins):
            y = top + ph
            for n, colour in ((n_ok[k], _OK), (n_bad[k], _LEAK)):
                if n:
                    hgt = n / peak * (ph - 4)
                    y -= hgt
                    out.append(f"<rect x='{x0 + k * bw:.1f}' y='{y:.1f}' width='{bw:.1f}' height='{hgt:.1f}' "
                               f"fill='{colour}'/>")
        tx = sx(t)
        out.append(f"<line x1='{tx:.1f}' y1='{top}' x2='{tx:.1f}' y2='{top + ph}' stroke='black' "
                   "stroke-dasharray='4 3'/>")
        out.append(f"<text x='{x0 + pw / 2}' y='{top - 5}' font-size='11' text-anchor='middle'>{_esc(rec['name'])}"
                   f" ({'cosine' if rec['higher_is_similar'] else 'distance'}, threshold {t})</text>")
        for v, anchor_ in ((lo, "start"), (hi, "end")):
            out.append(f"<text x='{sx(v):.1f}' y='{top + ph + 13}' font-size='9' text-anchor='{anchor_}'>"
                       f"{v:.2f}</text>")
        out.append(f"<text x='{x0 - 3}' y='{top + 8}' font-size='9' text-anchor='end'>{peak}</text>")
    out.append(f"<text x='{left}' y='{height - 3}' font-size='10'><tspan fill='{_OK}'>&#9632; not recognised</tspan> "
               f"<tspan fill='{_LEAK}'>&#9632; recognised</tspan> (faces per bin; dashed: threshold)</text>")
    out.append("</svg>")
    return "".join(out)


def _img(b64: str, alt: str, mime: str = "image/png", cls: str = "") -> str:
    return f'<img class="{cls}" alt="{_esc(alt)}" src="data:{mime};base64,{b64}">'


def _fmt(v, pct: bool = False, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return _esc(v)
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    if pct:
        return f"{100 * v:.1f} %"
    return f"{v:.{digits}f}" if isinstance(v, float) else _esc(v)


def _where(result: AuditResult, item: int, time_s, file) -> str:
    if file is not None:
        return _esc(file)
    if time_s is not None:
        return f"{format_time(time_s)} (frame {item})"
    return f"#{item}"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa;line-height:1.45}
main{max-width:1060px;margin:0 auto;padding:0 20px 40px}
.verdict{padding:22px 28px;color:#fff;font-size:1.35em;font-weight:600}
.verdict.leak{background:#b71c1c}.verdict.ok{background:#1b5e20}.verdict.none{background:#546e7a}
.verdict small{display:block;font-weight:400;font-size:.62em;opacity:.9;margin-top:6px}
h2{margin-top:34px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b71c1c;font-weight:600}.good{color:#1b5e20}
.plot{max-width:100%;height:auto;display:block;margin:10px 0;background:#fff}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0;font-size:.78em;text-align:center;max-width:180px}
figure img{height:112px;border:3px solid #ccc}figure.leak img{border-color:#c62828}
.note{color:#555;font-size:.9em}ul.limits li{margin:4px 0}
"""


def render_html(result: AuditResult) -> str:
    """The report page as a string (see the module docstring for what it may and may not contain)."""
    d = result.to_dict()
    unit = result.unit
    kind = "leak" if result.leaked else ("ok" if result.faces else "none")
    recs = result.recognizers
    parts: list[str] = []
    add = parts.append
    add("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    add("<meta name='viewport' content='width=device-width,initial-scale=1'>")
    add(f"<title>faceskin audit: {_esc(Path(result.protected).name)}</title><style>{CSS}</style></head><body>")
    add(f"<div class='verdict {kind}' id='verdict'>{_esc(result.verdict())}"
        f"<small>{_esc(result.original)} &rarr; {_esc(result.protected)}</small></div><main>")

    # ---- summary
    faces = d["faces"]
    leaks = d["leaks"]
    add("<h2>Summary</h2><table>")
    rows = [
        ("what was compared", f"{_esc(result.media)}: original {_esc(result.original)}, protected {_esc(result.protected)}"),
        (f"{unit}s checked", f"{result.items_checked} of {result.items_total}"
         + (f" (every {ordinal(result.frame_step)})" if result.frame_step > 1 else "")),
        ("faces found in the original", (f"{faces['total']} ({faces['unconfirmed_detections']} unconfirmed: "
                                          "reported by one detector only)")),
        ("in the protected file",
         f"{faces['skinned']} skinned, {faces['covered']} covered (fall-back), {faces['unchanged']} unchanged"),
        (f"leaked {unit}s", f"<span class='{'bad' if result.leaked else 'good'}'>{leaks[unit + 's']}</span>"),
        ("matches not counted", (f"{leaks['weak_faces']} faces, where the protected face was no closer to the "
                                 "original than an identity-free cover of it (mosaic, flat fills), or closer to another "
                                 "person in the same frame, or the detection was unconfirmed: ")
         + ("; ".join(f"{_esc(why)}: " + ", ".join(f"{_esc(k)} {v}" for k, v in per.items() if v)
                      for why, per in leaks["matches_discounted"].items() if any(per.values())) or "none")
         + (f"; unconfirmed detections: {leaks['matched_unconfirmed_faces']}" if leaks["matched_unconfirmed_faces"]
            else "") + ("" if not result.strict else " (strict mode: every match counted)")),
        ("unchanged, not counted", (f"{leaks['unchanged_not_counted']} faces look untouched but their matches "
                                    "were discounted (unconfirmed detections: check the thumbnails below)")),
        ("recognizers (match rule)", ", ".join(f"{_esc(r['name'])} ({_esc(r['rule'])})" for r in recs)),
        ("face detectors (on the original)", _esc(", ".join(result.detectors))),
    ]
    for k, v in rows:
        add(f"<tr><th>{_esc(k)}</th><td>{v}</td></tr>")
    add("</table>")
    for w in result.warnings:
        add(f"<p class='note'>&#9888; {_esc(w)}</p>")

    # ---- leaks
    events = result.leak_events()
    if events:
        add(f"<h2>Leaked {unit}s</h2>")
        add("<p class='note'>The thumbnails below are from the PROTECTED file and show what leaked: "
            "keep this report private until the leak is fixed.</p>")
        if result.media == "video":
            runs = result.leak_runs()
            step = f" (every {ordinal(result.frame_step)} frame checked)" if result.frame_step > 1 else ""
            add(f"<table><tr><th>from</th><th>to</th><th>frames{_esc(step)}</th><th>tracks</th><th>recognised by</th></tr>")
            for run in runs[:300]:
                add(f"<tr><td>{_esc(run['start'])} (frame {run['first_frame']})</td>"
                    f"<td>{_esc(run['end'])} (frame {run['last_frame']})</td><td class='num'>{run['frames']}</td>"
                    f"<td>{_esc(', '.join(map(str, run['tracks'])))}</td><td>{_esc(', '.join(run['recognizers']))}</td></tr>")
            rows_total = len(runs)
        else:
            add(f"<table><tr><th>{unit}</th><th>faces</th><th>recognised by</th></tr>")
            for e in events[:300]:
                add(f"<tr><td>{_esc(e.get('file', e[unit]))}</td><td>{len(e['tracks'])}</td>"
                    f"<td>{_esc(', '.join(e['counted_recognizers']))}</td></tr>")
            rows_total = len(events)
        add("</table>")
        if rows_total > 300:
            add(f"<p class='note'>... and {rows_total - 300} more (all are in the JSON report).</p>")
        leak_thumbs = [t for t in result.thumbnails if t.why == "leak"]
        if leak_thumbs:
            add("<div class='thumbs'>")
            for t in leak_thumbs:
                cap = f"{_where(result, t.item, t.time, t.file)}<br>track {t.track}: {_esc(', '.join(t.matched))}"
                add(f"<figure class='leak'>{_img(t.jpeg_base64, 'leaked face', 'image/jpeg')}"
                    f"<figcaption>{cap}</figcaption></figure>")
            add("</div>")

    bare = [t for t in result.thumbnails if t.why == "unchanged"]
    if bare:
        add("<h2>Unchanged, but not counted</h2>")
        add("<p class='note'>These places look untouched in the protected file, but only one detector reported a face "
            "there (an unconfirmed detection) or no recognizer could single the person out, so they are not counted as "
            "leaks. Check them: a face the protection missed, or something a detector mistook for a face.</p>"
            "<div class='thumbs'>")
        for t in bare:
            cap = f"{_where(result, t.item, t.time, t.file)}<br>track {t.track}"
            add(f"<figure>{_img(t.jpeg_base64, 'unchanged region', 'image/jpeg')}<figcaption>{cap}</figcaption></figure>")
        add("</div>")

    # ---- plots
    # "over time" needs time: for photos the histogram alone (it draws the thresholds too), which
    # also halves the report's cost, most of which is matplotlib
    sim = similarity_plot(result) if result.media == "video" else None
    hist = histogram_svg(result) if result.faces else None
    if sim or hist:
        add("<h2>Similarity to the original</h2>")
    if sim:
        add("<p class='note'>Each line is one person (track). A point past the dashed line means that recognizer "
            "still says &ldquo;same person&rdquo; for that face: a leak.</p>")
        add(_img(sim, "similarity over time per track with thresholds", cls="plot"))
    if hist:
        add(hist)

    # ---- tracks
    tracks = d["tracks"]
    if tracks:
        title = "People (tracks)" if result.media == "video" else "Faces"
        add(f"<h2>{title}</h2><table><tr><th>{'track' if result.media == 'video' else 'face'}</th>"
            f"<th>{unit}s</th><th>faces</th><th>leaked</th><th>skinned / covered / unchanged</th>")
        for r in recs:
            add(f"<th>worst {_esc(r['name'])}</th>")
        add("</tr>")
        higher = {r["name"]: r for r in recs}
        for t in tracks[:200]:
            span = (f"{format_time(t['first_time'])}–{format_time(t['last_time'])}" if "first_time" in t
                    else _esc(t.get("file", "")))
            st = t["states"]
            add(f"<tr><td>{t['track']}</td><td>{span}</td><td class='num'>{t['faces']}</td>"
                f"<td class='num {'bad' if t['leaked_faces'] else ''}'>{t['leaked_faces']}</td>"
                f"<td>{st.get('skinned', 0)} / {st.get('covered', 0)} / {st.get('unchanged', 0)}</td>")
            for r in recs:
                w = t["worst_similarity"].get(r["name"])
                if w is None:
                    add("<td>–</td>")
                    continue
                rec = higher[r["name"]]
                past = w["similarity"] >= rec["threshold"] if rec["higher_is_similar"] else w["similarity"] <= rec["threshold"]
                add(f"<td class='num {'bad' if past else ''}'>{w['similarity']:.3f}</td>")
            add("</tr>")
        add("</table>")
        if len(tracks) > 200:
            add(f"<p class='note'>... and {len(tracks) - 200} more in the JSON report.</p>")
        others = [t for t in result.thumbnails if t.why not in ("leak", "unchanged")]
        if others:
            add("<p class='note'>Protected faces: each track's closest call (&ldquo;worst&rdquo;) and two samples.</p>"
                "<div class='thumbs'>")
            for t in others[:180]:
                cap = f"track {t.track} {t.why}<br>{_where(result, t.item, t.time, t.file)}<br>{_esc(t.state)}"
                add(f"<figure class='{'leak' if t.matched else ''}'>"
                    f"{_img(t.jpeg_base64, 'protected face', 'image/jpeg')}<figcaption>{cap}</figcaption></figure>")
            add("</div>")

    # ---- gallery attack
    g = d["gallery"]
    if g:
        add("<h2>Gallery attack</h2>")
        add(f"<p>Gallery: {_esc(g['path'])}: {g['people']} people, {g['faces_embedded']} faces in {g['photos']} photos. "
            "A face counts when its ORIGINAL is identified as one of the gallery's people; the question is whether "
            "its protected version still is.</p>")
        add("<table><tr><th>recognizer</th><th>faces</th><th>originals identified</th>"
            "<th>protected still verified</th><th>protected ranked first</th><th>tracks verified in any face</th></tr>")
        for name, s in g["by_recognizer"].items():
            bad = bool(s["protected_verified"])
            add(f"<tr><td>{_esc(name)}</td><td class='num'>{s['faces']}</td><td class='num'>{s['original_identified']}</td>"
                f"<td class='num {'bad' if bad else ''}'>{s['protected_verified']} ({_fmt(s['verification_rate'], True)})</td>"
                f"<td class='num'>{_fmt(s['protected_rank1'])} ({_fmt(s['rank1_rate'], True)})</td>"
                f"<td class='num'>{s['tracks_verified_in_any_face']} of {s['tracks_known']}</td></tr>")
        add("</table>")
        if not g["rank1_meaningful"]:
            add("<p class='note'>Rank-1 needs at least two people in the gallery; with one it is not reported.</p>")

    # ---- linkability
    link = d["linkability"]
    if link:
        add("<h2>Linkability</h2>")
        add(f"<p class='{'bad' if link['linkable'] else 'good'}'>{_esc(link['sentence'])}</p>")
        if link["pairs"]:
            add("<table><tr><th>here</th><th>other</th><th>recognizers (share of matching pairs)</th></tr>")
            for p in link["pairs"][:50]:
                add(f"<tr><td>{p['this']}</td><td>{p['other']}</td><td>"
                    + _esc(", ".join(f"{k} {v:.0%}" for k, v in p["recognizers"].items())) + "</td></tr>")
            add("</table>")
        if link["within_this_output"]:
            add(f"<p class='note'>Within this output, {len(link['within_this_output'])} pair(s) of tracks wear the "
                "same skin (for example a person who left and came back).</p>")
        add(f"<p class='note'>{_esc(link['key'])}</p>")

    # ---- fidelity
    fid = d["fidelity"]
    out = fid["outside_faces"]
    add("<h2>Fidelity</h2><table>")
    br = fid["blendshape_r"]
    pose = fid["head_pose_error_deg"]
    jit = fid["landmark_jitter"]
    frows = [
        ("skinned faces still found by a face detector", _fmt(fid["detection_rate_skinned"], True),
         f"{fid['skinned_faces']} skinned faces"),
        ("expression kept: mouth open (jawOpen), Pearson r", _fmt(br["jawOpen"]),
         f"{fid['blendshape_pairs']} faces; mean abs. error {_fmt(fid['blendshape_mean_abs_error']['jawOpen'])}"),
        ("expression kept: eye blink, Pearson r", _fmt(br["eyeBlink"]),
         f"mean abs. error {_fmt(fid['blendshape_mean_abs_error']['eyeBlink'])}"),
        ("head pose error (yaw / pitch / roll)",
         " / ".join(f"{pose[k]:.1f}°" for k in ("yaw", "pitch", "roll")) if pose else "–", "mean absolute"),
        ("landmark jitter, output vs input", _fmt(jit["ratio"]),
         (f"input {_fmt(jit['input'], digits=5)}, output {_fmt(jit['output'], digits=5)} (face sizes per frame², "
          f"{jit['triples']} frame triples); 1.0 = no added flicker")),
        ("PSNR outside the head regions", ("∞ (identical)" if out["psnr_db"] == "inf" else f"{out['psnr_db']:.2f} dB"),
         f"{out['pixels_changed']} of {out['pixels_compared']} pixels differ; worst frame "
         + ("∞" if out["worst_frame_psnr_db"] == "inf" else f"{out['worst_frame_psnr_db']:.2f} dB")),
    ]
    for k, v, note in frows:
        add(f"<tr><th>{_esc(k)}</th><td class='num'>{v}</td><td class='note'>{_esc(note)}</td></tr>")
    add("</table>")
    if out["psnr_db"] != "inf" and result.media == "video":
        add("<p class='note'>A re-encoded video never has infinite PSNR: the codec changes every pixel a little. "
            "Above about 40 dB the difference is invisible.</p>")

    # ---- limits and method
    add("<h2>What this audit does not cover</h2><ul class='limits'>")
    for lim in d["limits"]:
        add(f"<li>{_esc(lim)}</li>")
    add("</ul>")
    add("<h2>How it was measured</h2><p class='note'>")
    add(_esc(
        f"Faces were found in the original by {', '.join(result.detectors)}, and each was compared with the same "
        "place in the protected file (re-detected there when a face is still found, so a skin that moved a few pixels "
        "is compared where it is). Every recognizer embeds both faces; a face leaks when a recognizer's similarity "
        "passes its threshold, unless (reported, not counted) the original is at least as close to an identity-free "
        "cover of itself (a plain 5-block mosaic, the face filled with its mean colour, or the head filled with the "
        f"colour around it), give or take {d['settings']['cover_tolerance']} of the way from the "
        "threshold to identical, as to the protected face (no more recognisable than a cover), or the protected "
        "face is at least as close to another person seen in the same frame, or nothing of the face is left in "
        "the protected face box (its coarse layout, blurred by a twelfth of the box, varies by "
        f"{d['settings']['blank_levels']} grey levels or less, and a tenth of the original's or less: a flat fill), or only one detector reports the "
        "face (unless it is under 40 px with a score of 0.8 or more: distant faces often are found by one detector "
        "only). Faces are linked across frames into tracks by box overlap. Skinned / covered / unchanged are read "
        "from the pixels: unchanged = mean difference under "
        f"{d['settings']['unchanged_levels']} grey levels, or the fine detail still correlates with the original's "
        f"at {d['settings']['unchanged_detail_correlation']} or more; covered = detail gone (mosaic, fill, blur) or "
        "no face found there any more; skinned = changed and still a face. PSNR is computed over every pixel outside the "
        f"head ellipses (grown by {int(100 * out['margin'])} %) of the faces found in the original."))
    add("</p>")
    t = d["timings"]
    add(f"<p class='note'>Audit took {d['seconds']:.1f} s ("
        + _esc(", ".join(f"{k} {v:.1f} s" for k, v in t.items())) + ").</p>")
    add("<p class='note'>Report by faceskin. No script, font or image in this page is loaded from anywhere else.</p>")
    add("</main></body></html>")
    return "".join(parts)


def write_html(result: AuditResult, path: str | os.PathLike) -> None:
    """Write the report page atomically (temp file beside it, then rename)."""
    import time

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FaceskinError("the HTML report needs matplotlib: pip install 'faceskin[eval]'") from None
    t0 = time.perf_counter()
    text = render_html(result)
    result.timings["report_html"] = time.perf_counter() - t0
    _atomic_write_text(Path(path), text)
