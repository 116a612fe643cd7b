"""Post images: fetched once per URL, checked, then fitted to each platform's limits.

Image URLs come from feed content, so fetching them is an SSRF risk: only http(s), every
resolved address must be public unless the host is explicitly allowed, redirects are
followed by hand and re-checked, and each download is capped in time and bytes. Pillow is
imported inside functions so that `import syndicator.media` stays cheap for the CLI.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import socket
import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from syndicator.connector import Limits
from syndicator.errors import MediaError
from syndicator.models import Image, ImageFile

if TYPE_CHECKING:
    from PIL import Image as PILImage

log = logging.getLogger(__name__)

REDIRECTS = frozenset({301, 302, 303, 307, 308})
JPEG_MAX_SIDE = 65_500
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 10.0
CHUNK = 64 * 1024
# Formats we decode, by Pillow's name. MPO is a camera JPEG with extra frames appended.
MIME = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
JPEG_QUALITIES = (85, 75, 65, 50)
SHRINK = 0.75
MIN_SIDE = 32
ORIENTATION = 0x0112
GPS_IFD = 0x8825
BLOCKED = ("is_private", "is_loopback", "is_link_local", "is_multicast", "is_reserved")
NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class MediaPolicy:
    """How far image fetching may go; one policy for the whole daemon."""

    timeout: float = 20.0
    max_download_bytes: int = 20_000_000
    max_pixels: int = 40_000_000  # decoded-pixel cap: decompression bombs
    allowed_private_hosts: frozenset[str] = frozenset()  # e.g. the feed's own host on a LAN
    user_agent: str = "syndicator/0.1"


@dataclass(frozen=True)
class _Source:
    """A downloaded image that decoded cleanly, with what fitting needs to know."""

    data: bytes
    mime: str
    width: int
    height: int
    clean: bool  # upright (EXIF orientation 1) and carrying no GPS: safe to send as is


class _Refused(Exception):
    """Why an image was refused; `ImageCache.load` turns it into a MediaError naming the URL."""


class ImageCache:
    """Fetches each image URL once (per post being dispatched) and fits it to each platform."""

    def __init__(self, policy: MediaPolicy, session: requests.Session | None = None) -> None:
        self.policy = policy
        self._session = session or _make_session()
        self._allowed = frozenset(h.lower().strip("[]") for h in policy.allowed_private_hosts)
        self._sources: dict[str, _Source | str] = {}
        self._fitted: dict[tuple[str, Limits], ImageFile] = {}

    def load(self, image: Image, limits: Limits) -> ImageFile:
        """The `ImageLoader` handed to connectors; raises MediaError naming the image."""
        key = (image.url, limits)
        if key not in self._fitted:
            source = self._source(image.url)
            try:
                self._fitted[key] = _fit(source, limits, self.policy)
            except _Refused as exc:
                raise MediaError(_message(image.url, exc)) from None
        fitted = self._fitted[key]
        log.debug("image %s: %s %dx%d", _shown(image.url), fitted.mime, fitted.width, fitted.height)
        return replace(fitted, alt=image.alt, source_url=image.url)

    def _source(self, url: str) -> _Source:
        """The checked download for `url`; a failure is remembered so it is not fetched again."""
        if url not in self._sources:
            try:
                self._sources[url] = _inspect(self._download(url), self.policy)
            except _Refused as exc:
                self._sources[url] = _message(url, exc)
            except (ValueError, OSError) as exc:  # e.g. a redirect to "http://[::1/x.png"
                self._sources[url] = _message(url, _Refused(f"unusable ({type(exc).__name__})"))
        result = self._sources[url]
        if isinstance(result, str):
            raise MediaError(result)
        return result

    def _download(self, url: str) -> bytes:
        """GET `url`, following at most MAX_REDIRECTS redirects and checking every hop."""
        deadline = time.monotonic() + self.policy.timeout
        for _hop in range(MAX_REDIRECTS + 1):
            self._check(url)
            with self._get(url, deadline) as response:
                location = response.headers.get("Location")
                if response.status_code in REDIRECTS and location:
                    url = urljoin(url, location)
                    continue
                return self._read(response, deadline)
        raise _Refused(f"more than {MAX_REDIRECTS} redirects")

    def _check(self, url: str) -> None:
        """Refuse non-http(s) URLs and hosts with any non-public address, before connecting."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise _Refused(f"unsupported URL scheme {parts.scheme or '(none)'!r}")
        host = parts.hostname
        if not host:
            raise _Refused("no host in URL")
        if host in self._allowed:
            return
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, ValueError):
            raise _Refused(f"cannot resolve host {host}") from None
        for info in infos:
            address = str(info[4][0]).split("%", 1)[0]
            if not _is_public(ipaddress.ip_address(address)):
                raise _Refused(f"{host} resolves to a non-public address ({address})")

    def _get(self, url: str, deadline: float) -> requests.Response:
        """One GET, streamed, with no automatic redirects."""
        remaining = _remaining(deadline, self.policy)
        headers = {"User-Agent": self.policy.user_agent, "Accept": "image/*"}
        try:
            return self._session.get(
                url,
                headers=headers,
                stream=True,
                allow_redirects=False,
                timeout=(min(remaining, CONNECT_TIMEOUT), remaining),
            )
        except requests.Timeout:
            raise _Refused(f"timed out after {self.policy.timeout:g}s") from None
        except requests.RequestException as exc:
            raise _Refused(f"download failed ({type(exc).__name__})") from None

    def _read(self, response: requests.Response, deadline: float) -> bytes:
        """The body of an image response, within the byte cap and the deadline."""
        if response.status_code != 200:
            raise _Refused(f"HTTP {response.status_code}")
        ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if not ctype.startswith("image/"):
            raise _Refused(f"not an image: {ctype or 'no Content-Type'}")
        cap = self.policy.max_download_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _Refused(f"larger than {cap} bytes ({declared})")
        body = bytearray()
        try:
            # read1 returns what has arrived; a plain read(n) could block on a slow drip.
            while chunk := response.raw.read1(CHUNK, decode_content=True):
                body += chunk
                if len(body) > cap:
                    raise _Refused(f"larger than {cap} bytes")
                _remaining(deadline, self.policy)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
                raise _Refused(f"timed out after {self.policy.timeout:g}s") from None
            raise _Refused(f"download failed ({type(exc).__name__})") from None
        return bytes(body)


def _make_session() -> requests.Session:
    """A session that ignores proxy and .netrc settings from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


def _remaining(deadline: float, policy: MediaPolicy) -> float:
    """Seconds left before the total deadline; refuses once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Refused(f"timed out after {policy.timeout:g}s")
    return left


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Globally routable and not special; IPv6 forms that embed an IPv4 address check it too."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not _is_public(embedded):
            return False
    return ip.is_global and not ip.is_unspecified and not any(getattr(ip, a) for a in BLOCKED)


def _message(url: str, exc: _Refused) -> str:
    """What a MediaError says: the image, then why it was refused."""
    return f"image {_shown(url)}: {exc}"


def _shown(url: str) -> str:
    """The URL as it may appear in messages: no credentials, query or fragment."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment="").geturl()


def _fit(source: _Source, limits: Limits, policy: MediaPolicy) -> ImageFile:
    """The source itself when it is clean and already fits, else a re-encoded copy."""
    if source.clean and source.mime in limits.image_types and _within(source, limits):
        return ImageFile(source.data, source.mime, source.width, source.height)
    try:
        data, mime, (width, height) = _reencode(source, limits, policy)
    except (OSError, ValueError) as exc:
        raise _Refused(f"could not re-encode ({_brief(exc)})") from None
    return ImageFile(data, mime, width, height)


def _within(source: _Source, limits: Limits) -> bool:
    """True when the source's size and sides are within the platform's limits."""
    side = limits.max_image_side
    fits_side = side is None or max(source.width, source.height) <= side
    return fits_side and len(source.data) <= limits.max_image_bytes


def _open(data: bytes, policy: MediaPolicy) -> PILImage.Image:
    """Open (headers only) an image of a format we accept, refusing too many pixels."""
    from PIL import Image as PILImage

    PILImage.init()
    formats = [name for name in MIME if name in PILImage.OPEN]
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            img = PILImage.open(io.BytesIO(data), formats=formats)
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            raise _Refused(f"decompression bomb refused: {exc}") from None
        except PILImage.UnidentifiedImageError:
            raise _Refused("not a supported image (JPEG, PNG, GIF, WebP, AVIF)") from None
        except Exception as exc:  # a hostile header can trip any parser error
            raise _Refused(f"truncated or corrupt image ({type(exc).__name__})") from None
    width, height = img.size
    if width * height > policy.max_pixels:
        img.close()
        raise _Refused(f"too many pixels: {width}x{height} exceeds {policy.max_pixels}")
    return img


def _inspect(data: bytes, policy: MediaPolicy) -> _Source:
    """Decode the first frame fully, so truncated or corrupt files are refused here."""
    with _open(data, policy) as img:
        try:
            img.load()
            exif = img.getexif()
        except Exception as exc:  # decoders report damage as OSError, SyntaxError, ValueError...
            raise _Refused(f"truncated or corrupt image ({_brief(exc)})") from None
        clean = exif.get(ORIENTATION, 1) == 1 and GPS_IFD not in exif
        return _Source(data, MIME[str(img.format)], img.width, img.height, clean)


def _brief(exc: Exception) -> str:
    """A decoder error in a few words; Pillow's messages say nothing about the request."""
    text = str(exc)[:80]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _reencode(
    source: _Source, limits: Limits, policy: MediaPolicy
) -> tuple[bytes, str, tuple[int, int]]:
    """Upright, metadata-free copy within the limits: PNG if it has alpha and fits, else JPEG."""
    img, icc = _upright(source, policy)
    size = _bounded(img.size, limits.max_image_side)
    png_ok, jpeg_ok = "image/png" in limits.image_types, "image/jpeg" in limits.image_types
    if img.mode == "RGBA" and png_ok and jpeg_ok:
        data = _save(_resized(img, size), "PNG", None, icc)
        if len(data) <= limits.max_image_bytes:
            return data, "image/png", size
    qualities: tuple[int | None, ...] = JPEG_QUALITIES
    if jpeg_ok:
        img, fmt = _flatten(img), "JPEG"
    elif png_ok:
        fmt, qualities = "PNG", (None,)  # lossless: only shrinking helps
    else:
        raise _Refused(f"platform accepts neither JPEG nor PNG: {', '.join(limits.image_types)}")
    while max(size) >= MIN_SIDE:
        scaled = _resized(img, size)
        for quality in qualities:
            data = _save(scaled, fmt, quality, icc)
            if len(data) <= limits.max_image_bytes:
                return data, MIME[fmt], size
        size = (max(1, round(size[0] * SHRINK)), max(1, round(size[1] * SHRINK)))
    raise _Refused(f"cannot be made smaller than {limits.max_image_bytes} bytes")


def _upright(source: _Source, policy: MediaPolicy) -> tuple[PILImage.Image, bytes | None]:
    """First frame, EXIF rotation applied, mode RGB/RGBA/L, and no metadata but the ICC profile."""
    from PIL import ImageOps

    with _open(source.data, policy) as frame:
        icc = frame.info.get("icc_profile") if frame.mode != "CMYK" else None
        img = ImageOps.exif_transpose(frame)
    if img.has_transparency_data:
        img = img.convert("RGBA")
        if img.getchannel("A").getextrema()[0] == 255:  # alpha channel, but fully opaque
            img = img.convert("RGB")
    if img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGB")
    img.info = {}  # drops EXIF (GPS), XMP and comments; the encoders only add what we pass
    return img, icc


def _flatten(img: PILImage.Image) -> PILImage.Image:
    """JPEG has no alpha: composite transparent pixels onto white."""
    from PIL import Image as PILImage

    if img.mode != "RGBA":
        return img
    flat = PILImage.new("RGB", img.size, "white")
    flat.paste(img, mask=img.getchannel("A"))
    return flat


def _bounded(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """`size` scaled down, keeping the aspect ratio, so the longer side fits `max_side`."""
    width, height = size
    max_side = min(max_side or JPEG_MAX_SIDE, JPEG_MAX_SIDE)  # JPEG cannot hold more
    if max(width, height) <= max_side:
        return size
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resized(img: PILImage.Image, size: tuple[int, int]) -> PILImage.Image:
    """`img` at `size` (always a downscale here), with a high-quality filter."""
    from PIL import Image as PILImage

    if img.size == size:
        return img
    return img.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)


def _save(img: PILImage.Image, fmt: str, quality: int | None, icc: bytes | None) -> bytes:
    """Encode `img`; of the source's metadata only the ICC profile is carried over."""
    options: dict[str, object] = {"optimize": fmt == "JPEG", "icc_profile": icc}
    if quality is not None:
        options["quality"] = quality
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()
