import io

import numpy as np
import pytest
from PIL import Image

from reid.core.images import decode_image
from reid.errors import BadImage, TooLarge, UnsupportedImage
from reid_devtools.hostile import encode, png_header_only
from reid_devtools.samples import gradient, jpeg_with_orientation

LIMITS = dict(max_bytes=5_000_000, max_pixels=4_000_000)


def decode(data: bytes, **limits) -> np.ndarray:
    return decode_image(data, field="image1", **{**LIMITS, **limits})


def close(a: np.ndarray, b: np.ndarray, tolerance: float) -> bool:
    return a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() <= tolerance


RGB = gradient()


@pytest.mark.parametrize(
    ("make", "tolerance"),
    [
        (lambda: encode(Image.fromarray(RGB), "PNG"), 0),
        (lambda: encode(Image.fromarray(RGB), "JPEG", quality=95), 3),
        (lambda: encode(Image.fromarray(RGB), "JPEG", quality=95, progressive=True), 3),
        (lambda: encode(Image.fromarray(RGB).convert("CMYK"), "JPEG", quality=95), 4),
        (lambda: encode(Image.fromarray(RGB).convert("RGBA"), "PNG"), 0),
        (lambda: encode(Image.fromarray(RGB).quantize(256), "PNG"), 12),
    ],
    ids=["png", "jpeg", "progressive-jpeg", "cmyk-jpeg", "rgba-png", "palette-png"],
)
def test_colour_forms_decode_to_the_same_rgb(make, tolerance):
    decoded = decode(make())
    assert decoded.dtype == np.uint8 and decoded.shape == RGB.shape
    assert close(decoded, RGB, tolerance)


def test_greyscale_png_becomes_three_equal_channels():
    grey = RGB[:, :, 0]
    decoded = decode(encode(Image.fromarray(grey, "L"), "PNG"))
    assert decoded.shape == RGB.shape
    assert (decoded == grey[:, :, None]).all()


def test_sixteen_bit_png_keeps_its_high_byte():
    wide = (RGB[:, :, 1].astype(np.uint16) << 8) | 0x7F
    decoded = decode(encode(Image.fromarray(wide), "PNG"))
    assert Image.open(io.BytesIO(encode(Image.fromarray(wide), "PNG"))).mode.startswith("I")
    assert (decoded[:, :, 0] == RGB[:, :, 1]).all()


def test_transparent_pixels_show_the_grey_background():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 255)  # opaque red on the left, fully transparent black on the right
    decoded = decode(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (decoded[:, :4] == (255, 0, 0)).all()
    assert (decoded[:, 4:] == (114, 114, 114)).all()


@pytest.mark.parametrize(("orientation", "turn"), [(1, 0), (3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(orientation, turn):
    # EXIF 6 means "rotate 90 degrees clockwise to display", np.rot90(k=-1) is clockwise.
    decoded = decode(jpeg_with_orientation(RGB, orientation))
    assert close(decoded, np.rot90(RGB, k=turn), 3)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", BadImage),
        (b"\xff", UnsupportedImage),
        (b"hello, this is text", UnsupportedImage),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, BadImage),
        (encode(Image.fromarray(RGB), "JPEG")[:300], BadImage),
        (encode(Image.fromarray(RGB), "PNG")[:-40], BadImage),
        (encode(Image.fromarray(RGB), "GIF"), UnsupportedImage),
        (encode(Image.fromarray(RGB), "TIFF"), UnsupportedImage),
        (encode(Image.fromarray(RGB), "WEBP"), UnsupportedImage),
        (encode(Image.fromarray(RGB), "BMP"), UnsupportedImage),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", UnsupportedImage),
        (b"%PDF-1.4\n", UnsupportedImage),
    ],
    ids=[
        "empty",
        "one-byte",
        "text",
        "jpeg-magic-only",
        "truncated-jpeg",
        "truncated-png",
        "gif",
        "tiff",
        "webp",
        "bmp",
        "svg",
        "pdf",
    ],
)
def test_bad_input_is_refused_with_the_right_error(data, error):
    with pytest.raises(error) as raised:
        decode(data)
    assert raised.value.field == "image1"
    assert str(raised.value).startswith("image1: ")


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda data: data[:600] + b"\x00" * 1400 + data[2000:], "between segments"),  # tables and scan overwritten
        (lambda data: data.replace(b"\xff\xc0", b"\xff\xc0\x00\x00\x00\x00\x00\x00", 1), "corrupt"),  # frame header
    ],
    ids=["zeroed-middle", "broken-frame-header"],
)
def test_corrupt_jpeg_is_refused(damage, words):
    data = damage(encode(Image.fromarray(gradient(256, 256)), "JPEG"))
    with pytest.raises(BadImage, match=words):
        decode(data)


def test_damage_inside_the_scan_is_concealed_at_the_right_size():
    # libjpeg conceals damage in entropy-coded data; the image keeps its size.
    data = bytearray(encode(Image.fromarray(gradient(256, 256)), "JPEG"))
    scan = data.rindex(b"\xff\xda") + 20
    data[scan : scan + 200] = bytes(200)
    assert decode(bytes(data)).shape == (256, 256, 3)


def test_pixel_bomb_is_refused_before_decoding():
    with pytest.raises(TooLarge, match="60000x60000"):
        decode(png_header_only(60000, 60000))


def test_pixel_and_byte_caps():
    data = encode(Image.fromarray(gradient(100, 100)), "PNG")
    with pytest.raises(TooLarge, match="pixels"):
        decode(data, max_pixels=100 * 100 - 1)
    with pytest.raises(TooLarge, match="bytes"):
        decode(data, max_bytes=len(data) - 1)
    assert decode(data, max_pixels=100 * 100, max_bytes=len(data)).shape == (100, 100, 3)


@pytest.mark.parametrize("size", [(1, 1), (10000, 10)])
def test_extreme_shapes_decode(size):
    width, height = size
    assert decode(encode(Image.new("RGB", size, (10, 20, 30)), "PNG")).shape == (height, width, 3)


def test_icc_profiled_image_decodes():
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    decoded = decode(encode(Image.fromarray(RGB), "JPEG", quality=95, icc_profile=profile))
    assert close(decoded, RGB, 3)
