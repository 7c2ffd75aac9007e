"""The HTML journal in a real browser: headless Chromium renders the exported file (offline, nothing
fetched), its screenshot is the expected size and not blank, the text is in the page as the browser
parsed it, and the day's facts take up the page (dark pixels where the text is)."""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.test_journal import run, sample, utc  # noqa: F401  (fixtures)

WIDTH, HEIGHT = 900, 1400
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (packaging/test.sh installs the Debian package "
                             "'chromium'; this system's package manager could not)")


def read_png(path: Path) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as an (h, w, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, {}, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
    w, h, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    ch = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:                   # Sub, Average, Paeth depend on the pixel to the left: one at a time
            cur = np.zeros_like(line)
            for x in range(len(line)):
                a = cur[x - ch] if x >= ch else 0
                b, c = prev[x], (prev[x - ch] if x >= ch else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[x] = (line[x] + p) & 255
        out[y] = prev = cur
    return out.reshape(h, w, ch).astype(np.uint8)


def chromium(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", "--force-color-profile=srgb", "--force-prefers-color-scheme=light",
                           f"--user-data-dir={home / 'chromium'}", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_html_journal_renders_offline_in_chromium(sample, tmp_path):  # noqa: F811
    db, _ = sample
    page = tmp_path / "journal.html"
    run(db, "export", "journal", "--format", "html", "--output", str(page))
    html = page.read_text()
    # one file: no scripts, no stylesheet, image or font to fetch
    assert "<script" not in html and "<link" not in html and "src=" not in html and "url(" not in html

    dom = chromium("--dump-dom", page.as_uri(), home=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("Monday 3 March 2025", "You bought a new cello bow yesterday.", "What was heard",
                 "The budget meeting moved to Thursday afternoon.", "Wednesday 5 March 2025",
                 "You decided to sell your car and cycle to work."):
        assert text in dom.stdout, text
    assert '<time datetime="2025-03-03T14:05:00.000+00:00">14:05</time>' in dom.stdout

    shot = tmp_path / "journal.png"
    r = chromium(f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", page.as_uri(), home=tmp_path)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    img = read_png(shot)[:, :, :3].astype(int)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    assert img.std() > 10                                        # not blank
    ink = img.sum(axis=2) < 300                                  # dark pixels: text
    rows = np.flatnonzero(ink.any(axis=1))
    assert len(rows) > 200 and rows.max() > HEIGHT // 2          # text runs down the page, day after day
    cols = np.flatnonzero(ink.any(axis=0))
    assert cols.min() > 20 and cols.max() < WIDTH - 20           # inside the page's margins, nothing cut off
