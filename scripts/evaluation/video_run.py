"""test.py --video, --video_root and --stream: the run over one video, a folder of videos or a live source
(docs/training_and_evaluation.md). Per video scores.csv, timeline.png and overlay.mp4
(scripts/evaluation/video_outputs.py), a folder's summary.csv and failures.csv; a stream's JSON lines,
scores.csv and timeline.png (scripts/evaluation/stream.py). test.py parses the flags and calls score_videos.
"""
from __future__ import annotations

import sys
from functools import partial

from scripts.core.devices import resolve_device, use_threads
from scripts.core.errors import MateError, mirrored_path
from scripts.core.fileio import write_text
from scripts.data.xd_violence import video_stem
from scripts.evaluation import video_outputs as outputs
from scripts.evaluation.single_video import VideoScorer, top_intervals
from scripts.extraction.video import check_video_file, scan_videos


def score_videos(args) -> int:
    """--video, --video_root or --stream: each video's scores.csv, timeline.png and overlay.mp4
    (scripts/evaluation/video_outputs.py); a stream's JSON lines, scores.csv and timeline.png
    (scripts/evaluation/stream.py)."""
    live = args.stream is not None
    if live:
        from scripts.evaluation.stream import check_stream_flags
        check_stream_flags(args.stream_timeout, args.reconnect)  # before the backbone loads and prints
    say = partial(print, file=sys.stderr, flush=True) if live else print  # a stream's stdout: JSON lines only
    threads = use_threads(args.threads)
    scorer = VideoScorer(args.checkpoint, backbone=args.backbone, backbone_checkpoint=args.backbone_checkpoint,
                         pretrained=args.pretrained, random_weights=args.random_weights,
                         device=resolve_device(args.device), crops=args.crops, decoder=args.decoder,
                         force_settings=args.force_settings, window_clips=args.window_clips,
                         clip_batch_size=args.clip_batch_size, clip_workers=args.clip_workers, live=live)
    say(f"{scorer.device} ({threads}; {scorer.batching.said})")
    threshold, said = scorer.threshold, scorer.threshold_said
    if args.threshold is not None:
        threshold, said = args.threshold, f"threshold {args.threshold:g}: --threshold"
    say(scorer.said)
    say(said)
    if args.random_weights:
        say(f"note: {outputs.RANDOM_NOTE}")
    out_dir = args.out_dir
    if out_dir is None:
        from scripts.models.checkpoint import output_folder
        out_dir = output_folder(args.checkpoint, scorer.ckpt) / ("stream" if live else "videos")
    if live:
        from scripts.evaluation.stream import run_stream

        return run_stream(args, scorer, out_dir, threshold, said)
    annotations = {}
    if args.gt is not None:
        from scripts.data.framegt import read_annotations
        annotations = read_annotations(args.gt)
    if args.video is not None:
        check_video_file(args.video)
        root, videos = args.video.parent, [args.video]
    else:
        root, videos = args.video_root, scan_videos(args.video_root)[0]
        ours = [v for v in videos if v.resolve().is_relative_to(out_dir.resolve())]
        if ours:  # an --out_dir inside the root: its overlays are outputs, not videos to score
            say(f"skipped {len(ours)} video(s) under --out_dir {out_dir} (this script's own outputs)")
            videos = [v for v in videos if v not in ours]
        if not videos:
            raise MateError(f"{args.video_root}: no video files found (searched recursively)")
    rows, failures = [], []
    for video in videos:
        name = video.relative_to(root).as_posix()
        try:
            folder = mirrored_path(out_dir, video.relative_to(root).with_suffix(""), f"{video}: its output folder")
            scores = scorer.score(video, progress=not args.no_progress)
            ann = annotations.get(video_stem(video.name))
            title = f"{name}: video score {scores.video_score:.3f}"
            if scores.random_weights:
                title += f" ({outputs.RANDOM_NOTE})"
            written = [write_text(folder / "scores.csv", outputs.scores_csv(scores, args.checkpoint, said))]
            if not args.no_plots:
                written.append(outputs.plot_timeline(scores, folder / "timeline.png", threshold, title,
                                                     outputs.gt_seconds(ann, scores.fps) if ann else ()))
            if not args.no_overlay:
                written.append(outputs.write_overlay(video, scores, folder / "overlay.mp4", threshold,
                                                     args.decoder, progress=not args.no_progress))
        except Exception as exc:  # a folder: one bad video is listed, the others are scored
            if args.video is not None or isinstance(exc, KeyboardInterrupt):
                raise
            text = " ".join(str(exc).split())
            failures.append((name, text if isinstance(exc, MateError) else f"{type(exc).__name__}: {text}"))
            print(f"{name}: failed: {failures[-1][1]}")
            continue
        rows.append(outputs.summary_row(name, scores, threshold, folder))
        print(f"{name}: video score {scores.video_score:.4f}, peak {float(scores.scores.max()):.4f} "
              f"({len(scores.scores)} points, {scores.num_frames} frames at {scores.fps:g} fps)")
        for start, end, peak in top_intervals(scores, threshold):
            print(f"  {start:.1f}-{end:.1f} s: peak {peak:.4f}")
        print("  wrote " + ", ".join(str(p) for p in written))
    if args.video_root is not None:
        from scripts.extraction.batch import failures_csv
        summary = outputs.write_summary(out_dir / "summary.csv", rows)
        print(f"scored {len(rows)} of {len(videos)} videos; wrote {summary}")
        if failures:
            path = write_text(out_dir / "failures.csv", failures_csv(failures))
            print(f"{len(failures)} failed: listed in {path}", file=sys.stderr)
            return 1
    return 0
