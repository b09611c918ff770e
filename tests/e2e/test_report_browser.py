"""The demo's HTML report rendered by headless Chromium (Debian's chromium package).

Two checks: the DOM Chromium builds holds the inline SVG charts with their drawn paths, and a
screenshot of the page actually shows them (the charts' blue spend lines and the vermilion
anomaly ring are present as pixels, and the page is not one flat color).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BLUE = (0x00, 0x72, 0xB2)
VERMILION = (0xD5, 0x5E, 0x00)


def chromium() -> str:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB/RGBA non-interlaced PNG -> (H, W, C) uint8 array (all five row filters)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1).copy()
        if kind == 1:
            line = line.reshape(-1, channels).cumsum(axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            line = line + prev
        elif kind in (3, 4):
            line = _sequential(kind, line.tolist(), prev.tolist(), channels)
        out[y] = line
        prev = out[y]
    return out.reshape(height, width, channels)


def _sequential(kind: int, cur: list[int], up: list[int], bpp: int) -> np.ndarray:
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = up[i]
        if kind == 3:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 255
            continue
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        cur[i] = (cur[i] + pred) & 255
    return np.array(cur, dtype=np.uint8)


def count_color(pixels: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 24) -> int:
    diff = np.abs(pixels[..., :3].astype(np.int16) - np.array(rgb, dtype=np.int16))
    return int(np.all(diff <= tolerance, axis=-1).sum())


@pytest.fixture(scope="module")
def report(demo_run: Any) -> Path:
    path = demo_run.out / "report.html"
    assert path.is_file(), demo_run.stdout + demo_run.stderr
    return path


def test_chromium_builds_the_svg_charts(report: Path, tmp_path: Path) -> None:
    proc = run_chromium(tmp_path, "--dump-dom", report.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    svgs = re.findall(r"<svg\b.*?</svg>", dom, flags=re.S)
    # per scope a spend chart; month budgets add a month-to-date chart
    assert len(svgs) >= 6
    for svg in svgs:
        paths = re.findall(r'<path class="series[^"]*" d="(M[^"]+)"', svg)
        assert paths, "a chart without a drawn series"
        assert all(len(p.split("L")) >= 2 for p in paths)
        assert "<text" in svg  # axis labels
    assert any('class="anomaly"' in svg for svg in svgs)
    assert 'class="badge block"' in dom and 'class="badge throttle"' in dom


def test_screenshot_shows_the_charts(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    proc = run_chromium(
        tmp_path, "--window-size=1280,1800", f"--screenshot={shot}", report.as_uri()
    )
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    pixels = decode_png(shot.read_bytes())
    assert pixels.shape[:2] == (1800, 1280)
    flat = pixels[..., :3].reshape(-1, 3)
    assert len(np.unique(flat[::7], axis=0)) > 50, "the page looks blank"
    assert count_color(pixels, BLUE) > 300, "no spend line visible"
    assert count_color(pixels, VERMILION) > 20, "no anomaly ring / budget line visible"
