"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3-4, 8.3.5.1): a stored image
frame as a consumer image (JPEG by default, PNG or GIF on request), for viewers' previews and
study lists.

A frame is decoded by pydicom (native pixel data, RLE, and the JPEG and JPEG 2000 syntaxes
Pillow decodes), then, for grayscale, its Modality LUT (rescale) and a VOI window applied: the
``window`` parameter's (center, width and function ``linear``, ``linear-exact`` or ``sigmoid``,
PS3.3 C.11.2.1.2), else the instance's first VOI window or LUT, else its own value range; a
MONOCHROME1 frame is inverted so that it looks as intended. Colour (RGB, YBR, PALETTE COLOR) is
shown as RGB. ``viewport=vw,vh[,sx,sy,sw,sh]`` crops the source region (a negative width or
height flips it) and fits the result within vw x vh, its aspect kept; ``quality`` (1-100) sets
JPEG's; ``annotation`` and ``iccprofile`` are accepted and not offered. A thumbnail is the same
rendering fitted within :data:`THUMBNAIL_SIZE` unless a viewport says otherwise, of the middle
image of a series (of the first series, for a study).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any, Final

from fhir_server.core.errors import InvalidRequest, NotAcceptable, ResourceNotFound
from fhir_server.imaging.stow import MediaType

#: The media types a frame is rendered in (the first is the default) and Pillow's format names.
FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF"}
THUMBNAIL_SIZE: Final = 128
WINDOW_FUNCTIONS: Final = ("linear", "linear-exact", "sigmoid")
#: Query parameters of rendered resources this server reads or knowingly ignores.
PARAMETERS: Final = frozenset({"quality", "viewport", "window", "annotation", "iccprofile"})


@dataclass(frozen=True, slots=True)
class Rendering:
    """How to render: media type, JPEG quality, the viewport (its size, then optionally the
    source region sx, sy, sw, sh) and a VOI window (center, width, function)."""

    media_type: str = "image/jpeg"
    quality: int = 90
    size: tuple[int, int] | None = None
    region: tuple[float, float, float, float] | None = None
    window: tuple[float, float, str] | None = None
    multipart: bool = False


def rendering(query: Mapping[str, str], accept: str | None) -> Rendering:
    """The parameters of a rendered or thumbnail request; InvalidRequest naming a bad one,
    NotAcceptable when no image type of :data:`FORMATS` is acceptable."""
    for name in query:
        if name not in PARAMETERS:
            raise InvalidRequest(f"{name!r} is not a parameter of rendered resources")
    media_type, multipart = _media_type(accept)
    quality = _integer(query.get("quality", "90"), "quality")
    if not 1 <= quality <= 100:
        raise InvalidRequest(f"quality must be from 1 to 100, not {quality}")
    size = region = window = None
    if "viewport" in query:
        numbers = _numbers(query["viewport"], "viewport", (2, 6))
        if numbers[0] < 1 or numbers[1] < 1 or numbers[0] > 8192 or numbers[1] > 8192:
            raise InvalidRequest("viewport width and height must be from 1 to 8192")
        size = (int(numbers[0]), int(numbers[1]))
        region = (numbers[2], numbers[3], numbers[4], numbers[5]) if len(numbers) == 6 else None
    if "window" in query:
        parts = [p.strip() for p in query["window"].split(",")]
        function = parts[2].lower() if len(parts) == 3 else "linear"
        center, width = _numbers(",".join(parts[:2]), "window", (2,))
        if width <= 0 or function not in WINDOW_FUNCTIONS:
            raise InvalidRequest(
                "window must be center,width[,function] with a positive width and a function "
                f"of {', '.join(WINDOW_FUNCTIONS)}, not {query['window']!r}"
            )
        window = (center, width, function)
    return Rendering(media_type, quality, size, region, window, multipart)


def _media_type(accept: str | None) -> tuple[str, bool]:
    for media in MediaType.ranges(accept, default="image/jpeg"):
        inner = media.params.get("type", "").lower()
        multipart = media.type in ("multipart/related", "multipart/*")
        wanted = inner if multipart else media.type
        if wanted in FORMATS:
            return wanted, multipart
        if wanted in ("*/*", "image/*", "") and (multipart or wanted):
            return "image/jpeg", multipart
    raise NotAcceptable(
        f"Accept {accept!r}: rendered images are {', '.join(FORMATS)} (or multipart/related of "
        "one of them)"
    )


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number, not {text!r}") from None


def _numbers(text: str, name: str, counts: tuple[int, ...]) -> list[float]:
    try:
        numbers = [float(part) for part in text.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in counts or not all(math.isfinite(n) for n in numbers):
        raise InvalidRequest(
            f"{name} must be {' or '.join(map(str, counts))} numbers, not {text!r}"
        )
    return numbers


def render(part10: bytes, frame: int, how: Rendering, *, thumbnail: bool = False) -> bytes:
    """Frame ``frame`` (from 1) of a Part-10 instance as ``how`` says (CPU-bound: call it from a
    worker thread). NotAcceptable for an instance without pixel data or whose pixel data cannot
    be decoded here, ResourceNotFound for a frame beyond its last."""
    import pydicom
    from PIL import Image, ImageOps

    ds = pydicom.dcmread(BytesIO(part10))
    if "PixelData" not in ds:
        raise NotAcceptable("the instance has no pixel data: it cannot be rendered as an image")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame <= frames:
        raise ResourceNotFound(f"frame {frame} does not exist (the instance has {frames})")
    try:
        from pydicom.pixels.utils import pixel_array

        array = pixel_array(ds, index=frame - 1 if frames > 1 else None)
    except Exception as exc:  # no decoder for the syntax, corrupt data: say what
        raise NotAcceptable(f"the pixel data cannot be decoded for rendering: {exc}") from None
    image = Image.fromarray(_eight_bit(array, ds, how))
    if how.region is not None:
        image = _region(image, how.region, ImageOps)
    limit = how.size or ((THUMBNAIL_SIZE, THUMBNAIL_SIZE) if thumbnail else None)
    if limit is not None:
        scale = min(limit[0] / image.width, limit[1] / image.height)
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    out = BytesIO()
    options: dict[str, Any] = {"quality": how.quality} if how.media_type == "image/jpeg" else {}
    image.save(out, FORMATS[how.media_type], **options)
    return out.getvalue()


def _eight_bit(array: Any, ds: Any, how: Rendering) -> Any:
    import numpy as np
    from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        array = apply_color_lut(array, ds)
        return (array.astype(np.float64) / max(float(array.max()), 1.0) * 255).astype(np.uint8)
    if array.ndim == 3:  # colour, decoded as RGB
        if array.dtype == np.uint8:
            return array
        top = float((1 << int(ds.get("BitsStored", 8))) - 1)
        return np.clip(array.astype(np.float64) / top * 255, 0, 255).astype(np.uint8)
    values = apply_modality_lut(array, ds).astype(np.float64)
    if how.window is not None:
        center, width, function = how.window
        values = _windowed(values, center, width, function)
    else:
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            values = apply_voi_lut(values, ds).astype(np.float64)
        low, high = float(values.min()), float(values.max())
        values = (values - low) / (high - low) if high > low else values * 0.0
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    return np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _windowed(values: Any, center: float, width: float, function: str) -> Any:
    """A VOI window as PS3.3 C.11.2.1.2 defines it, to the range 0-1."""
    import numpy as np

    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "linear-exact":
        return np.clip((values - (center - width / 2)) / width, 0.0, 1.0)
    if width <= 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip(((values - (center - 0.5)) / (width - 1)) + 0.5, 0.0, 1.0)


def _region(image: Any, region: tuple[float, float, float, float], image_ops: Any) -> Any:
    sx, sy, sw, sh = region
    left, right = sorted((sx, sx + sw)) if sw else (sx, float(image.width))
    top, bottom = sorted((sy, sy + sh)) if sh else (sy, float(image.height))
    box = (
        max(0, round(left)), max(0, round(top)),
        min(image.width, round(right)), min(image.height, round(bottom)),
    )  # fmt: skip
    if box[2] <= box[0] or box[3] <= box[1]:
        raise InvalidRequest(f"the viewport's source region {region} is outside the image")
    image = image.crop(box)
    if sw < 0:
        image = image_ops.mirror(image)
    if sh < 0:
        image = image_ops.flip(image)
    return image


def images(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The instance records that are images (they have Rows, 0028,0010); ResourceNotFound when
    none is."""
    found = [r for r in records if "00280010" in (r.get("attributes") or {})]
    if not found:
        raise ResourceNotFound("no image is stored here to render")
    return found


def representative(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The instance a study's or series' thumbnail shows: the middle image (by Instance Number)
    of its first series (by Series Number) that has images; ResourceNotFound when none has."""
    found = images(records)
    first = min(found, key=lambda r: (_number(r, "00200011"), str(r.get("series"))))
    series = [r for r in found if r.get("series") == first.get("series")]
    series.sort(key=lambda r: (_number(r, "00200013"), str(r.get("sop_instance"))))
    return series[(len(series) - 1) // 2]


def _number(record: Mapping[str, Any], tag: str) -> float:
    values = ((record.get("attributes") or {}).get(tag) or {}).get("Value") or []
    try:
        return float(values[0])
    except (IndexError, TypeError, ValueError):
        return math.inf
