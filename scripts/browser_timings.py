#!/usr/bin/env python
"""Benchmark the app as a learner experiences it, in Debian's Chromium (Playwright).

Starts `streamlit run lab/app/main.py` on a free port (runs go to a temporary
POSE_LAB_RUNS), then measures
  - app start -> the Try it page's title visible (and -> its skeletons drawn)
  - for N different photos: upload -> the Try it skeletons redrawn, and the sidebar
    switch to Part detector -> its 14 unary heatmaps drawn
  - a 12-megapixel (4000 x 3000) photo of three people: upload -> the first skeletons
    (issue 7's target: <= 1.5 s), then person 2 picked from the list -> their skeletons
prints a table of median / min / max seconds, optionally writes JSON, and stops the app.

    .venv/bin/python scripts/browser_timings.py            # 3 uploads
    .venv/bin/python scripts/browser_timings.py --uploads 5 --json artifacts/bench.json

Uploads are bundled samples mirrored left-right (real photos whose pixels, the app's
cache key, are new), so every upload runs the models. Needs /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "app"))

import browser_util as bu  # noqa: E402

PHOTOS = ("lsp_im1041.jpg", "lsp_im1051.jpg", "lsp_im1091.jpg", "astronaut.jpg", "wide_lsp_im1033.jpg",
          "lsp_im1007.jpg")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uploads", type=int, default=3, help=f"photos to upload (1-{len(PHOTOS)}, default 3)")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds allowed for each wait (default 180)")
    ap.add_argument("--json", type=Path, help="also write the measurements here")
    ap.add_argument("--no-group", action="store_true",
                    help="skip the 12-MP photo of three people (upload -> skeletons, target <= 1.5 s; pick person 2)")
    ap.add_argument("--screenshots", type=Path, help="save a screenshot after each measurement to this folder")
    args = ap.parse_args(argv)
    if not Path(bu.CHROMIUM).is_file():
        print(f"needs Chromium at {bu.CHROMIUM}", file=sys.stderr)
        return 2
    n = max(1, min(args.uploads, len(PHOTOS)))
    from playwright.sync_api import sync_playwright

    rows: dict[str, list[float]] = {"app start -> healthy": [], "app start -> first page": [],
                                    "app start -> first skeletons": [], "upload -> skeletons": [],
                                    "switch -> detector heatmaps": [], "12-MP group upload -> skeletons": [],
                                    "pick person 2 -> skeletons": []}
    with tempfile.TemporaryDirectory(prefix="pose-lab-bench-") as tmp:
        tmp = Path(tmp)
        server = bu.AppServer(tmp / "runs", log_path=tmp / "streamlit.log")
        try:
            server.start()
            rows["app start -> healthy"].append(server.wait_healthy(max(args.timeout, 120)))
            with sync_playwright() as pw:
                browser = bu.launch_chromium(pw)
                try:
                    page = bu.new_page(browser, int(args.timeout * 1000))
                    t_goto = time.perf_counter()
                    t_title, t_results = bu.open_try_it(page, server.url, args.timeout)
                    rows["app start -> first page"].append(t_goto + t_title - server.started_at)
                    rows["app start -> first skeletons"].append(t_goto + t_results - server.started_at)
                    bu.wait_idle(page, args.timeout)
                    for i, name in enumerate(PHOTOS[:n]):
                        photo = bu.mirrored_photo(name, tmp / f"upload_{i + 1}_{Path(name).stem}.jpg")
                        up = bu.upload_photo(page, photo, args.timeout)
                        rows["upload -> skeletons"].append(up)
                        bu.wait_idle(page, args.timeout)
                        if args.screenshots:
                            bu.screenshot(page, f"bench-{i + 1}-try-it", args.screenshots)
                        sw = bu.switch_to_detector(page, args.timeout)
                        rows["switch -> detector heatmaps"].append(sw)
                        bu.wait_idle(page, args.timeout)
                        if args.screenshots:
                            bu.screenshot(page, f"bench-{i + 1}-detector", args.screenshots)
                        found = bu.problems(page)
                        if found:
                            print(f"warning: {found}", file=sys.stderr)
                        print(f"  {photo.name}: upload -> skeletons {up:.2f} s, switch -> detector {sw:.2f} s",
                              flush=True)
                        if i + 1 < n:
                            bu.switch_to_try_it(page, args.timeout)
                            bu.wait_idle(page, args.timeout)
                    if not args.no_group:
                        bu.switch_to_try_it(page, args.timeout)
                        bu.wait_idle(page, args.timeout)
                        group = bu.group_photo(tmp / "group_12mp.jpg")
                        up = bu.upload_photo(page, group, args.timeout)
                        rows["12-MP group upload -> skeletons"].append(up)
                        bu.wait_idle(page, args.timeout)
                        click = bu.choose_person(page, 2, args.timeout)
                        rows["pick person 2 -> skeletons"].append(click)
                        print(f"  {group.name} (4000x3000, 3 people): upload -> skeletons {up:.2f} s, "
                              f"pick person 2 from the list -> skeletons {click:.2f} s", flush=True)
                        if args.screenshots:
                            bu.screenshot(page, "bench-group-person-2", args.screenshots)
                finally:
                    browser.close()
        finally:
            server.stop()

    print(f"\n{'measurement (seconds)':32s} {'n':>3s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for k, v in rows.items():
        if v:
            print(f"{k:32s} {len(v):3d} {statistics.median(v):8.2f} {min(v):8.2f} {max(v):8.2f}")
    if args.json:
        bu.write_json(args.json, {k: {"values": [round(x, 3) for x in v], "median": round(statistics.median(v), 3),
                                      "min": round(min(v), 3)} for k, v in rows.items() if v})
    return 0


if __name__ == "__main__":
    sys.exit(main())
