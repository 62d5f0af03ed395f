#!/usr/bin/env python3
"""Draws a seat map document the way a seat picker would: every seat at its world position
(section origin and rotation applied), coloured by its category.

  python3 SeatMaps/render.py SeatMaps/arena.json [-o /tmp/arena.png] [--width 2000]
                             [--crop X0,Y0,X1,Y1] [--svg]

Writes a PNG with Pillow (`pip install pillow`), or an SVG with --svg or when Pillow is missing.
Accessible seats are drawn with a white ring, companion seats with a white dot, restricted-view
seats with a dark cross. Section keys are written at each section's centre. --crop draws only
the given rectangle of world coordinates (to look at rows up close).

Geometry as in README.md: y grows downwards; a seat's world position is
origin + R(rotation) * (x, y), rotation in degrees clockwise on screen; seat n of a range row
is at x = x0 + (n - from) * dx with the row's y.
"""
import argparse, json, math, os, sys


def world_seats(doc):
    """Yields (section key, row key, seat key, world x, world y, category, seat dict)."""
    for s in doc["sections"]:
        origin = s.get("origin", {"x": 0, "y": 0})
        a = math.radians(s.get("rotation", 0))
        ca, sa = math.cos(a), math.sin(a)
        for row in s["rows"]:
            row_cat = row.get("category", s.get("category"))
            seats = []
            if "range" in row:
                lo, hi = row["range"]["from"], row["range"]["to"]
                seats += [{"key": str(n), "x": row["x0"] + (n - lo) * row["dx"]} for n in range(lo, hi + 1)]
            seats += row.get("seats", [])
            for seat in seats:
                x, y = seat["x"], seat.get("y", row.get("y"))
                yield (s["key"], row["key"], seat["key"],
                       origin["x"] + x * ca - y * sa, origin["y"] + x * sa + y * ca,
                       seat.get("category", row_cat), seat)


def hex_rgb(color):
    color = color.lstrip("#")
    return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4)) if len(color) == 6 else (128, 128, 128)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("document")
    ap.add_argument("-o", "--output", help="default: /tmp/<document name>.png (or .svg)")
    ap.add_argument("--width", type=int, default=2000, help="image width in pixels")
    ap.add_argument("--crop", help="X0,Y0,X1,Y1 in world map units")
    ap.add_argument("--svg", action="store_true", help="write SVG (no Pillow needed)")
    args = ap.parse_args()

    with open(args.document, encoding="utf-8") as f:
        doc = json.load(f)
    colors = {c["key"]: c.get("color", "#808080") for c in doc["categories"]}
    seats = list(world_seats(doc))
    if args.crop:
        x0, y0, x1, y1 = (float(v) for v in args.crop.split(","))
        seats = [t for t in seats if x0 <= t[3] <= x1 and y0 <= t[4] <= y1]
    else:
        x0, x1 = min(t[3] for t in seats) - 40, max(t[3] for t in seats) + 40
        y0, y1 = min(t[4] for t in seats) - 40, max(t[4] for t in seats) + 40

    margin_top, legend_h = 50, 30 * ((len(colors) + 3) // 4) + 10
    scale = (args.width - 20) / (x1 - x0)
    height = int((y1 - y0) * scale) + margin_top + legend_h + 10
    px = lambda x: 10 + (x - x0) * scale
    py = lambda y: margin_top + (y - y0) * scale
    radius = max(0.4 * 10 * scale, 1.0)      # seats are 10 units apart: draw them 8 units wide

    # Section key at the centre of its seats.
    centres = {}
    for t in seats:
        c = centres.setdefault(t[0], [0.0, 0.0, 0])
        c[0] += t[3]; c[1] += t[4]; c[2] += 1
    counts = {}
    for t in seats:
        counts[t[5]] = counts.get(t[5], 0) + 1
    title = f"{doc['name']} - {len(seats)} seats"

    base = os.path.splitext(os.path.basename(args.document))[0]
    use_svg = args.svg
    if not use_svg:
        try:
            from PIL import Image, ImageDraw, ImageFont
        except ImportError:
            print("Pillow is not installed: writing SVG instead", file=sys.stderr)
            use_svg = True
    out = args.output or f"/tmp/{base}.{'svg' if use_svg else 'png'}"

    legend = [(colors[k], f"{k} ({counts.get(k, 0)})") for k in colors]
    if use_svg:
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{args.width}" height="{height}">',
                 f'<rect width="100%" height="100%" fill="white"/>',
                 f'<text x="10" y="30" font-size="20" font-family="sans-serif">{title}</text>']
        for sk, rk, key, x, y, cat, seat in seats:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius:.1f}" fill="{colors.get(cat, "#000")}"'
                         + (' stroke="black" stroke-width="1.5"' if seat.get("accessible") else "") + '>'
                         f'<title>{sk}-{rk}-{key}</title></circle>')
        for k, (sx, sy, n) in centres.items():
            parts.append(f'<text x="{px(sx / n):.1f}" y="{py(sy / n):.1f}" font-size="14" text-anchor="middle" '
                         f'font-family="sans-serif">{k}</text>')
        for i, (color, text) in enumerate(legend):
            lx, ly = 10 + (i % 4) * (args.width // 4), height - legend_h + 10 + (i // 4) * 30
            parts.append(f'<rect x="{lx}" y="{ly}" width="16" height="16" fill="{color}"/>'
                         f'<text x="{lx + 22}" y="{ly + 14}" font-size="16" font-family="sans-serif">{text}</text>')
        parts.append("</svg>")
        with open(out, "w", encoding="utf-8") as f:
            f.write("\n".join(parts))
    else:
        img = Image.new("RGB", (args.width, height), "white")
        d = ImageDraw.Draw(img)
        try:
            font = ImageFont.load_default(size=16)
        except TypeError:
            font = ImageFont.load_default()
        d.text((10, 15), title, fill="black", font=font)
        for sk, rk, key, x, y, cat, seat in seats:
            cx, cy = px(x), py(y)
            d.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=hex_rgb(colors.get(cat, "#000000")))
            if seat.get("accessible"):
                d.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline="white", width=max(1, int(radius / 3)))
                d.ellipse((cx - radius - 1, cy - radius - 1, cx + radius + 1, cy + radius + 1), outline="black")
            if seat.get("companion"):
                r = radius / 3
                d.ellipse((cx - r, cy - r, cx + r, cy + r), fill="white")
            if seat.get("restricted_view"):
                r = radius * 0.7
                d.line((cx - r, cy - r, cx + r, cy + r), fill=(30, 30, 30), width=max(1, int(radius / 4)))
                d.line((cx - r, cy + r, cx + r, cy - r), fill=(30, 30, 30), width=max(1, int(radius / 4)))
        for k, (sx, sy, n) in centres.items():
            tx, ty = px(sx / n), py(sy / n)
            w = d.textlength(k, font=font)
            d.rectangle((tx - w / 2 - 2, ty - 9, tx + w / 2 + 2, ty + 9), fill="white")
            d.text((tx - w / 2, ty - 8), k, fill="black", font=font)
        for i, (color, text) in enumerate(legend):
            lx, ly = 10 + (i % 4) * (args.width // 4), height - legend_h + 10 + (i // 4) * 30
            d.rectangle((lx, ly, lx + 16, ly + 16), fill=hex_rgb(color))
            d.text((lx + 22, ly), text, fill="black", font=font)
        img.save(out)
    print(out)


if __name__ == "__main__":
    main()
