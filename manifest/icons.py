"""Warden's Teams icons: how they are drawn, and the rules Teams holds them to.

The PNGs under ``manifest/icons/`` are committed; ``python -m manifest.icons`` draws them
again from the shapes below (a shield with a check mark), so a change to the artwork is a
reviewed change to this file. Teams wants a 192×192 full-colour icon and a 32×32 outline
icon that is white on a transparent background; :func:`icon_problems` checks both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ICONS_DIR = Path(__file__).resolve().parent / "icons"
COLOR = "color.png"
OUTLINE = "outline.png"
COLOR_SIZE = 192
OUTLINE_SIZE = 32
BACKGROUND = (15, 108, 189)
"""The colour icon's background, the default accent colour ``#0F6CBD``."""

_SCALE = 8
"""Shapes are drawn this many times larger, then reduced: smooth edges without a font."""

_SHIELD = [
    (0.50, 0.08),
    (0.84, 0.20),
    (0.84, 0.48),
    (0.80, 0.62),
    (0.70, 0.76),
    (0.50, 0.92),
    (0.30, 0.76),
    (0.20, 0.62),
    (0.16, 0.48),
    (0.16, 0.20),
]
"""The shield's outline in fractions of the icon's side, clockwise from the top."""

_CHECK = [(0.33, 0.50), (0.45, 0.62), (0.68, 0.36)]
"""The check mark inside the shield."""


def _points(shape: list[tuple[float, float]], side: int) -> list[tuple[float, float]]:
    return [(x * side, y * side) for x, y in shape]


def _mask(size: int, *, filled: bool) -> Image.Image:
    """The shield and check as an alpha mask of ``size``: filled (colour) or outlined."""
    side = size * _SCALE
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    shield = _points(_SHIELD, side)
    if filled:
        draw.polygon(shield, fill=255)
        draw.line(_points(_CHECK, side), fill=0, width=side // 11, joint="curve")
    else:
        draw.polygon(shield, outline=255, width=side // 14)
        draw.line(_points(_CHECK, side), fill=255, width=side // 12, joint="curve")
    return mask.resize((size, size), Image.Resampling.LANCZOS)


def draw_color() -> Image.Image:
    """The 192×192 colour icon: a white shield with a check mark on Warden's blue."""
    icon = Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), BACKGROUND)
    icon.paste((255, 255, 255), (0, 0), _mask(COLOR_SIZE, filled=True))
    return icon


def draw_outline() -> Image.Image:
    """The 32×32 outline icon: the same shield in white lines, everything else transparent."""
    icon = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (255, 255, 255, 0))
    icon.putalpha(_mask(OUTLINE_SIZE, filled=False))
    return icon


def write_icons(directory: Path = ICONS_DIR) -> list[Path]:
    """Draw both icons into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in ((COLOR, draw_color()), (OUTLINE, draw_outline())):
        path = directory / name
        image.save(path, format="PNG", optimize=True)
        written.append(path)
    return written


def icon_problems(directory: Path = ICONS_DIR) -> list[str]:
    """Why the icons in ``directory`` would be refused by Teams; empty when both are fine."""
    return _color_problems(directory / COLOR) + _outline_problems(directory / OUTLINE)


def _open(path: Path) -> tuple[Image.Image | None, list[str]]:
    """The PNG at ``path`` loaded, or the reason it cannot be used."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.format != "PNG":
                return None, [f"icon {path.name}: is {image.format}, Teams needs a PNG"]
            return image.copy(), []
    except FileNotFoundError:
        return None, [f"icon {path.name}: missing ({path})"]
    except OSError as exc:
        return None, [f"icon {path.name}: not a readable image ({exc})"]


def _size_problem(path: Path, image: Image.Image, side: int) -> list[str]:
    if image.size == (side, side):
        return []
    width, height = image.size
    return [f"icon {path.name}: is {width}×{height}, Teams needs {side}×{side}"]


def _color_problems(path: Path) -> list[str]:
    image, problems = _open(path)
    if image is None:
        return problems
    return _size_problem(path, image, COLOR_SIZE)


def _outline_problems(path: Path) -> list[str]:
    """Size, an alpha channel, a transparent background and nothing but white in it."""
    image, problems = _open(path)
    if image is None:
        return problems
    problems = _size_problem(path, image, OUTLINE_SIZE)
    if image.mode != "RGBA":
        return [*problems, f"icon {path.name}: is {image.mode}, Teams needs RGBA (transparency)"]
    data = image.tobytes()
    pixels = [data[i : i + 4] for i in range(0, len(data), 4)]
    if not any(pixel[3] == 0 for pixel in pixels):
        problems.append(f"icon {path.name}: has no transparent background")
    coloured = sum(1 for pixel in pixels if pixel[3] and pixel[:3] != b"\xff\xff\xff")
    if coloured:
        problems.append(
            f"icon {path.name}: {coloured} visible pixel(s) are not white; Teams needs white "
            "on transparent"
        )
    return problems


if __name__ == "__main__":
    for written in write_icons(Path(sys.argv[1]) if len(sys.argv) > 1 else ICONS_DIR):
        sys.stdout.write(f"{written}\n")
