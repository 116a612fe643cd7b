"""ImageCache against a fake image server on 127.0.0.1; every image is generated with Pillow."""

from __future__ import annotations

import io
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import pytest
import requests
from PIL import ExifTags, ImageFile
from PIL import Image as PILImage
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from syndicator.connector import Limits
from syndicator.errors import MediaError
from syndicator.media import ImageCache, MediaPolicy
from syndicator.models import Image

LOCAL = frozenset({"127.0.0.1", "localhost"})
ANY = Limits(max_chars=500)  # jpeg and png, 5 MB, no side limit
BLUESKY = Limits(max_chars=300, max_image_bytes=1_000_000, max_image_side=2000)
JPEG_ONLY = Limits(max_chars=500, image_types=("image/jpeg",))


class Reached(Exception):
    """Raised by the no-network session: the request got past the address checks."""


class NoNetwork(requests.Session):
    def request(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
        raise Reached()


def encode(img: PILImage.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def photo(size: tuple[int, int] = (800, 600)) -> PILImage.Image:
    return PILImage.linear_gradient("L").resize(size).convert("RGB")


def decoded(data: bytes) -> PILImage.Image:
    img = PILImage.open(io.BytesIO(data))
    img.load()
    return img


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def blank_png(width: int, height: int, rows: int) -> bytes:
    """A grayscale PNG declaring width x height, with `rows` rows of zeros actually stored."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)
    idat = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def serve(server: HTTPServer, path: str, data: bytes, ctype: str = "image/jpeg") -> str:
    server.expect_request(path).respond_with_data(data, content_type=ctype)
    return server.url_for(path)


def refusal(cache: ImageCache, url: str, limits: Limits = ANY) -> str:
    with pytest.raises(MediaError) as caught:
        cache.load(Image(url), limits)
    return str(caught.value)


@pytest.fixture
def cache() -> ImageCache:
    return ImageCache(MediaPolicy(allowed_private_hosts=LOCAL))


@pytest.fixture(scope="module")
def noisy_jpeg() -> bytes:
    """A 4000x3000 photo-like image with enough noise that JPEG cannot squeeze it easily."""
    noise = [PILImage.effect_noise((1000, 750), 50).resize((4000, 3000)) for _ in range(3)]
    base = PILImage.merge("RGB", noise)
    return encode(PILImage.blend(base, photo((4000, 3000)), 0.3), "JPEG", quality=92)


# --- fitting ---------------------------------------------------------------------------


def test_fitting_jpeg_passes_through_byte_identical(httpserver: HTTPServer, cache: ImageCache):
    data = encode(photo(), "JPEG", quality=90)
    url = serve(httpserver, "/a.jpg", data)
    result = cache.load(Image(url, alt="a gradient"), ANY)
    assert (result.data, result.mime, result.width, result.height) == (data, "image/jpeg", 800, 600)
    assert (result.alt, result.source_url) == ("a gradient", url)


def test_png_becomes_jpeg_when_png_is_not_allowed(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/a.png", encode(photo(), "PNG"), "image/png")
    result = cache.load(Image(url), JPEG_ONLY)
    assert result.mime == "image/jpeg"
    assert decoded(result.data).format == "JPEG"
    assert (result.width, result.height) == (800, 600)


def test_large_noisy_image_fits_bluesky(httpserver: HTTPServer, cache: ImageCache, noisy_jpeg):
    assert len(noisy_jpeg) > 3_000_000
    url = serve(httpserver, "/big.jpg", noisy_jpeg)
    result = cache.load(Image(url), BLUESKY)
    img = decoded(result.data)
    assert len(result.data) <= 1_000_000
    assert max(result.width, result.height) <= 2000
    assert img.size == (result.width, result.height)
    assert result.width * 3 == result.height * 4  # aspect ratio kept
    assert result.mime == "image/jpeg"


def test_pure_noise_is_shrunk_when_lower_quality_is_not_enough(
    httpserver: HTTPServer, cache: ImageCache
):
    noise = PILImage.merge("RGB", [PILImage.effect_noise((800, 600), 100) for _ in range(3)])
    url = serve(httpserver, "/noise.png", encode(noise, "PNG"), "image/png")
    result = cache.load(Image(url), Limits(max_chars=500, max_image_bytes=150_000))
    assert len(result.data) <= 150_000
    assert (result.width, result.height) == (600, 450)  # one 0.75 step
    assert result.mime == "image/jpeg"


def transparent_badge() -> PILImage.Image:
    img = PILImage.new("RGBA", (100, 100), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (25, 25, 75, 75))
    return img


def test_alpha_is_flattened_onto_white_for_jpeg(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/badge.png", encode(transparent_badge(), "PNG"), "image/png")
    result = cache.load(Image(url), JPEG_ONLY)
    img = decoded(result.data).convert("RGB")
    assert result.mime == "image/jpeg"
    assert all(c > 245 for c in img.getpixel((5, 5)))
    red, green, blue = img.getpixel((50, 50))
    assert red > 240 and green < 15 and blue < 15


def test_alpha_png_stays_png_when_allowed_and_small(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/badge.png", encode(transparent_badge(), "PNG"), "image/png")
    result = cache.load(Image(url), Limits(max_chars=500, max_image_side=50))
    img = decoded(result.data)
    assert (result.mime, img.mode, img.size) == ("image/png", "RGBA", (50, 50))
    assert img.getpixel((2, 2))[3] == 0


def test_exif_orientation_is_applied(httpserver: HTTPServer, cache: ImageCache):
    stored = PILImage.new("RGB", (40, 20), "red")
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = PILImage.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display rotated 90 degrees clockwise
    url = serve(httpserver, "/turned.jpg", encode(stored, "JPEG", exif=exif, quality=95))
    result = cache.load(Image(url), ANY)
    img = decoded(result.data)
    assert (result.width, result.height) == img.size == (20, 40)
    assert img.getpixel((10, 5))[0] > 200  # top is red
    assert img.getpixel((10, 35))[2] > 200  # bottom is blue
    assert ExifTags.Base.Orientation not in img.getexif()


@pytest.mark.parametrize("limits", [ANY, Limits(max_chars=500, max_image_side=32)])
def test_gps_and_comments_are_stripped(httpserver: HTTPServer, cache: ImageCache, limits):
    exif = PILImage.Exif()
    exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 0.5)}
    exif[ExifTags.Base.Make] = "PhoneCo"
    url = serve(httpserver, "/gps.jpg", encode(photo((64, 64)), "JPEG", exif=exif, comment=b"hi"))
    img = decoded(cache.load(Image(url), limits).data)
    assert not img.getexif()
    assert "comment" not in img.info


def test_animated_gif_keeps_first_frame_unless_gif_allowed(
    httpserver: HTTPServer, cache: ImageCache
):
    frames = [PILImage.new("RGB", (60, 40), color) for color in ("green", "blue")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    url = serve(httpserver, "/anim.gif", gif, "image/gif")
    still = cache.load(Image(url), ANY)
    assert still.mime == "image/jpeg"
    assert decoded(still.data).getpixel((30, 20))[1] > 100  # green: the first frame
    with_gif = Limits(max_chars=500, image_types=("image/jpeg", "image/gif"))
    assert cache.load(Image(url), with_gif).data == gif


def test_image_that_cannot_shrink_enough_is_refused(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/a.jpg", encode(photo(), "JPEG"))
    message = refusal(cache, url, Limits(max_chars=500, max_image_bytes=100))
    assert message == f"image {url}: cannot be made smaller than 100 bytes"


# --- caching -----------------------------------------------------------------------------


def test_each_url_is_fetched_once_for_many_limits(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/a.png", encode(photo(), "PNG"), "image/png")
    results = [cache.load(Image(url), limits) for limits in (ANY, BLUESKY, JPEG_ONLY)]
    results.append(cache.load(Image(url, alt="again"), JPEG_ONLY))
    assert [r.mime for r in results] == ["image/png", "image/png", "image/jpeg", "image/jpeg"]
    assert results[3].alt == "again"
    assert len(httpserver.log) == 1


def test_failures_are_remembered_too(httpserver: HTTPServer, cache: ImageCache):
    httpserver.expect_request("/gone.jpg").respond_with_data("", status=404)
    url = httpserver.url_for("/gone.jpg")
    assert refusal(cache, url) == refusal(cache, url, BLUESKY) == f"image {url}: HTTP 404"
    assert len(httpserver.log) == 1


# --- what the server sends ----------------------------------------------------------------


def test_html_content_type_is_refused(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/page", b"<html></html>", "text/html; charset=utf-8")
    assert refusal(cache, url) == f"image {url}: not an image: text/html"


def test_html_served_as_jpeg_is_refused(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/fake.jpg", b"<!doctype html><html><body>404</body></html>")
    assert "not a supported image" in refusal(cache, url)


def test_truncated_jpeg_is_refused(httpserver: HTTPServer, cache: ImageCache):
    data = encode(PILImage.effect_noise((300, 300), 40).convert("RGB"), "JPEG")
    url = serve(httpserver, "/cut.jpg", data[: len(data) // 2])
    assert refusal(cache, url).startswith(f"image {url}: truncated or corrupt image")


def test_declared_decompression_bomb_is_refused(httpserver: HTTPServer, cache: ImageCache):
    url = serve(httpserver, "/bomb.png", blank_png(50_000, 50_000, rows=10), "image/png")
    assert "decompression bomb" in refusal(cache, url)


def test_compressible_bomb_is_refused_before_decoding(
    httpserver: HTTPServer, cache: ImageCache, monkeypatch: pytest.MonkeyPatch
):
    bomb = blank_png(8000, 6000, rows=6000)  # a real 48-megapixel PNG, 47 kB on the wire
    assert len(bomb) < 100_000
    url = serve(httpserver, "/bomb.png", bomb, "image/png")

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.monotonic()
    message = refusal(cache, url)
    assert message == f"image {url}: too many pixels: 8000x6000 exceeds 40000000"
    assert time.monotonic() - started < 3.0


CAPPED = [(False, "larger than 1000 bytes (1600)"), (True, "larger than 1000 bytes")]


@pytest.mark.parametrize(("chunked", "reason"), CAPPED)
def test_download_over_the_byte_cap_is_refused(httpserver: HTTPServer, chunked: bool, reason: str):
    body = bytes(1600)  # never decoded: the cap comes first
    stream = (body[i : i + 100] for i in range(0, len(body), 100))  # no Content-Length
    response = Response(stream if chunked else body, content_type="image/png")
    httpserver.expect_request("/big.png").respond_with_response(response)
    cache = ImageCache(MediaPolicy(max_download_bytes=1000, allowed_private_hosts=LOCAL))
    url = httpserver.url_for("/big.png")
    assert refusal(cache, url) == f"image {url}: {reason}"


def test_slow_drip_is_cut_off_at_the_deadline(httpserver: HTTPServer):
    def drip(request: Request) -> Response:
        def body() -> Iterator[bytes]:
            for _ in range(40):  # 2 s in all, if nobody hung up
                yield b"\xff"
                time.sleep(0.05)

        return Response(body(), content_type="image/jpeg", headers={"Content-Length": "40"})

    httpserver.expect_request("/slow.jpg").respond_with_handler(drip)
    cache = ImageCache(MediaPolicy(timeout=0.4, allowed_private_hosts=LOCAL))
    started = time.monotonic()
    assert refusal(cache, httpserver.url_for("/slow.jpg")).endswith("timed out after 0.4s")
    assert time.monotonic() - started < 3.0


def test_message_names_the_url_without_query_or_credentials(httpserver: HTTPServer):
    httpserver.expect_request("/private.jpg").respond_with_data("", status=403)
    url = httpserver.url_for("/private.jpg").replace("://", "://user:pw@") + "?token=s3cret#x"
    cache = ImageCache(MediaPolicy(allowed_private_hosts=LOCAL))
    assert refusal(cache, url) == f"image http://localhost:{httpserver.port}/private.jpg: HTTP 403"


# --- where we may connect -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.jpg",
        "http://localhost:8080/a.jpg",
        "http://10.1.2.3/a.jpg",
        "http://192.168.1.10/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.jpg",
        "http://[::ffff:127.0.0.1]/a.jpg",
        "http://[fe80::1]/a.jpg",
        "http://[fd00::1]/a.jpg",
        "http://[2002:7f00:1::1]/a.jpg",
        "http://[64:ff9b::a00:1]/a.jpg",
        "http://0.0.0.0/a.jpg",
        "http://224.0.0.1/a.jpg",
        "http://100.64.0.1/a.jpg",
        "http://240.0.0.1/a.jpg",
    ],
)
def test_non_public_addresses_are_refused_before_connecting(url: str):
    cache = ImageCache(MediaPolicy(), session=NoNetwork())
    assert "resolves to a non-public address" in refusal(cache, url)


@pytest.mark.parametrize("url", ["ftp://example.com/a.jpg", "file:///etc/passwd", "/a.jpg"])
def test_other_schemes_are_refused(url: str):
    cache = ImageCache(MediaPolicy(), session=NoNetwork())
    assert "unsupported URL scheme" in refusal(cache, url)


def fake_dns(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    def getaddrinfo(host: str, *args: object, **kwargs: object) -> list[tuple]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, 0)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_every_resolved_address_is_checked(monkeypatch: pytest.MonkeyPatch):
    fake_dns(monkeypatch, "93.184.216.34", "10.0.0.7")
    cache = ImageCache(MediaPolicy(), session=NoNetwork())
    message = refusal(cache, "https://cdn.example.com/a.jpg")
    assert message.endswith("cdn.example.com resolves to a non-public address (10.0.0.7)")


def test_public_addresses_are_fetched(monkeypatch: pytest.MonkeyPatch):
    fake_dns(monkeypatch, "93.184.216.34", "2606:2800:220:1::1")
    with pytest.raises(Reached):
        ImageCache(MediaPolicy(), session=NoNetwork()).load(Image("https://x.example/a"), ANY)


def test_allowed_private_host_is_fetched():
    cache = ImageCache(MediaPolicy(allowed_private_hosts=frozenset({"10.0.0.5"})), NoNetwork())
    with pytest.raises(Reached):
        cache.load(Image("http://10.0.0.5/a.jpg"), ANY)


@pytest.mark.parametrize(
    "target", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "ftp://x.org/"]
)
def test_redirect_to_a_refused_address_is_refused(httpserver: HTTPServer, cache, target: str):
    httpserver.expect_request("/r").respond_with_data("", status=302, headers={"Location": target})
    message = refusal(cache, httpserver.url_for("/r"))
    assert message.startswith(f"image {httpserver.url_for('/r')}: ")
    assert len(httpserver.log) == 1


def test_redirect_to_loopback_by_another_name_is_refused(httpserver: HTTPServer):
    loopback = f"http://127.0.0.1:{httpserver.port}/a.jpg"
    serve(httpserver, "/a.jpg", encode(photo(), "JPEG"))
    httpserver.expect_request("/r").respond_with_data(
        "", status=301, headers={"Location": loopback}
    )
    cache = ImageCache(MediaPolicy(allowed_private_hosts=frozenset({"localhost"})))
    assert "127.0.0.1 resolves to a non-public address" in refusal(cache, httpserver.url_for("/r"))
    assert len(httpserver.log) == 1


def redirect_chain(server: HTTPServer, hops: int) -> str:
    for hop in range(hops):
        location = {"Location": f"/r{hop + 1}"}
        server.expect_request(f"/r{hop}").respond_with_data("", status=307, headers=location)
    serve(server, f"/r{hops}", encode(photo((64, 48)), "JPEG"))
    return server.url_for("/r0")


def test_three_redirects_are_followed(httpserver: HTTPServer, cache: ImageCache):
    assert cache.load(Image(redirect_chain(httpserver, 3)), ANY).width == 64


def test_a_fourth_redirect_is_refused(httpserver: HTTPServer, cache: ImageCache):
    assert refusal(cache, redirect_chain(httpserver, 4)).endswith("more than 3 redirects")
    assert len(httpserver.log) == 4


def test_importing_media_does_not_import_pillow():
    code = "import sys, syndicator.media; sys.exit('PIL' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
