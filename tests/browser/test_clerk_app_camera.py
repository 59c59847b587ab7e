"""Camera scanning in the clerk app (docs/clerk-app.md#scanning): Chromium's fake camera plays a
video of an EAN-13 drawn here, and the app reads it with the WebAssembly polyfill (headless Linux
Chromium has no native BarcodeDetector), served from this server under the app's CSP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from tests.browser import test_clerk_app as clerk
from tests.browser.conftest import CHROMIUM, axe_violations
from tests.conftest import Actors
from tests.tea_shop import tea_shop

CODE = "4006381333931"
_L = ["0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011"]
_L += ["0110111", "0001011"]
_G = ["".join("1" if b == "0" else "0" for b in reversed(code)) for code in _L]  # reversed R
_R = ["".join("1" if b == "0" else "0" for b in code) for code in _L]
_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG"]
_PARITY += ["LGLGGL", "LGGLGL"]

app = clerk.app  # the app fixture of test_clerk_app, on this module's camera browser


def ean13_modules(code: str) -> str:
    """The 95 modules of an EAN-13 (1 = bar): guards, 6 left digits (L/G by the first digit),
    the centre guard, 6 right digits (R)."""
    digits = [int(c) for c in code]
    assert len(digits) == 13
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:12])) % 10) % 10
    assert digits[12] == check, "not a valid EAN-13"
    parity = _PARITY[digits[0]]
    left = "".join((_L if k == "L" else _G)[d] for k, d in zip(parity, digits[1:7], strict=True))
    return "101" + left + "01010" + "".join(_R[d] for d in digits[7:]) + "101"


def write_y4m(path: Path, code: str, *, width: int = 640, height: int = 480) -> None:
    """A 10-frame YUV4MPEG2 video (4:2:0) of the barcode, black on white, large and centred."""
    modules = ean13_modules(code)
    unit = 4  # pixels per module: 380 px of code, 130 px of quiet zone either side
    left = (width - unit * len(modules)) // 2
    row = bytearray(b"\xeb" * width)  # white (video range)
    for i, bar in enumerate(modules):
        if bar == "1":
            row[left + i * unit : left + (i + 1) * unit] = b"\x10" * unit  # black
    top, bottom = height // 6, height - height // 6
    luma = b"".join(bytes(row) if top <= y < bottom else b"\xeb" * width for y in range(height))
    chroma = b"\x80" * (width // 2 * (height // 2))
    frame = b"FRAME\n" + luma + chroma + chroma
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * 10)


def test_the_ean13_is_encoded_like_the_textbook() -> None:
    # 4006381333931, the common example: its first left digit (0, parity L) is 0001101, its
    # last (1, R) 1100110.
    modules = ean13_modules(CODE)
    assert len(modules) == 95
    assert modules.startswith("101" + "0001101") and modules.endswith("1100110" + "101")
    with pytest.raises(AssertionError):
        ean13_modules("4006381333932")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """This module's Chromium: a fake camera that plays the barcode video, no permission prompt."""
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium: apt-get install chromium chromium-driver")
    video = tmp_path / "barcode.y4m"
    write_y4m(video, CODE)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--disable-gpu",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        yield launched
        launched.close()


def test_scanning_with_the_camera_finds_the_product_and_fills_the_count_also_offline(
    app: clerk.ClerkApp, actors: Actors, container: Container
) -> None:
    # The product's SKU is the code on the box.
    tea_shop(container, {CODE: 7, "TEA-1": 3}, hamburg=0)
    clerk._signed_in_at_ber(app, actors.make(Role.CLERK, warehouses=["BER"]))
    app.page.context.grant_permissions(["camera"], origin=app.url(""))
    policy = app.page.request.get(app.url("/app/")).headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in policy
    wasm = app.page.request.get(app.url("/app/vendor/barcode-detector-3.2.2/zxing_reader.wasm"))
    assert wasm.headers["content-type"] == "application/wasm"

    fetched: list[str] = []
    app.page.on("request", lambda request: fetched.append(request.url))
    app.page.get_by_role("button", name="Scan with camera", exact=True).click()
    dialog = app.page.get_by_role("dialog", name="Scan a barcode")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Camera preview")).to_be_visible()
    expect(app.page.locator("#chosen-name")).to_have_text(f"Tea {CODE}", timeout=30_000)
    expect(dialog).to_be_hidden()
    expect(app.page.locator("#chosen-stock")).to_contain_text("On hand 7")
    assert app.page.evaluate("document.querySelector('#scan-video').srcObject") is None
    assert app.url("/app/vendor/barcode-detector-3.2.2/zxing_reader.wasm") in fetched
    assert all(url.startswith(app.url("/")) for url in fetched), fetched  # no CDN
    app.shoot("clerk-app-scanned")

    app.page.get_by_role("button", name="Scan with camera for the count").click()
    expect(dialog).to_be_visible()
    expect(app.page.get_by_label("Counted quantity")).to_be_focused(timeout=30_000)
    expect(app.page.get_by_label("SKU or barcode", exact=True)).to_have_value(CODE)

    app.offline(True)  # the polyfill and its .wasm were cached by the service worker on first use
    app.page.reload()
    app.page.get_by_role("button", name="Scan with camera", exact=True).click()
    expect(app.page.locator("#chosen-name")).to_have_text(f"Tea {CODE}", timeout=30_000)

    # Esc: a camera that sees no barcode (a blank canvas stream) is stopped when Esc closes it.
    app.page.evaluate(
        """() => {
            const blank = document.createElement("canvas");
            blank.getContext("2d").fillRect(0, 0, blank.width, blank.height);
            window.blank = blank.captureStream(5);
            navigator.mediaDevices.getUserMedia = async () => window.blank;
        }"""
    )
    scan = app.page.get_by_role("button", name="Scan with camera", exact=True)
    scan.click()
    expect(dialog.get_by_role("status")).to_have_text("Point the camera at the barcode.")
    expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    app.shoot("clerk-app-camera")
    assert axe_violations(app.page) == []
    app.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(scan).to_be_focused()  # focus back where it was
    assert app.page.evaluate("window.blank.getVideoTracks()[0].readyState") == "ended"
    assert app.page.evaluate("document.querySelector('#scan-video').srcObject") is None
