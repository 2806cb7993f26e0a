"""Screenshots of the demo's dashboard for docs/guide.md: `make screenshots` runs `make demo`
(which starts the dashboard), then this script, in Debian's Chromium driven by Playwright.

    python scripts/screenshots.py http://127.0.0.1:8800 docs/screenshots
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def latest_apply(root: Path) -> int | None:
    """The newest apply of dev that changed something, read from the run store the demo wrote."""
    runs = sorted((root / ".opsgit/runs/dev").glob("*.json"), reverse=True)
    for path in runs:
        record = json.loads(path.read_text())
        if record.get("kind") == "apply" and record.get("status") == "applied":
            return int(path.stem)
    return None


def main(url: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("error: chromium is not installed (make chromium)")
    try:
        urllib.request.urlopen(url + "/login", timeout=5).close()
    except OSError as error:
        sys.exit(f"error: no dashboard at {url} ({error}); run `make demo` first")
    out.mkdir(parents=True, exist_ok=True)
    number = latest_apply(Path.cwd())
    pages = {"overview": "/", "environment": "/environments/dev", "images": "/images", "consul": "/consul",
             "locks": "/locks"}
    if number is not None:
        pages["run"] = f"/environments/dev/runs/{number}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        for name, path in pages.items():
            page.goto(url + path)
            page.wait_for_load_state("load")  # live pages keep an event stream open: never "network idle"
            page.screenshot(path=str(out / f"{name}.png"), full_page=name in ("run", "environment"))
            print(f"{out / (name + '.png')}: {path}")
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url + "/")
        phone.screenshot(path=str(out / "phone.png"))
        print(f"{out / 'phone.png'}: / at phone width")
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2]))
