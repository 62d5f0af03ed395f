#!/usr/bin/env python3
"""Writes the sample seat maps (theatre.json, arena.json, stadium.json) beside this script, then
checks them against the rules of SEATMAPS.md and a few geometry rules of our own.

  python3 SeatMaps/generate.py            # regenerate in place, then check
  python3 SeatMaps/generate.py --check    # only check the files that are there

Deterministic: the same files every run (no randomness, coordinates rounded to 0.1 map unit).
Standard library only.

Geometry conventions (see README.md): map units, y grows downwards (screen convention), the
stage or pitch is "up" in every section's local coordinates (a section's first row is nearest
to it, rows go back with increasing local y), seats are 10 units apart along a row. A section's
`rotation` is in degrees, clockwise on screen, about the section's `origin`, applied to the
local x/y: world = origin + R(rotation) * (x, y). A range row's seat n sits at
x = x0 + (n - from) * dx.
"""
import json, math, os, re, sys

HERE = os.path.dirname(os.path.abspath(__file__))

SEAT_PITCH = 10          # centre to centre along a row
ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"   # theatre rows skip I and O


def num(value):
    """Rounds to 0.1 unit; integral values are written without a fraction."""
    r = round(value, 1)
    if r == 0:
        return 0
    return int(r) if r == int(r) else r


def range_row(key, y, n, category=None, dx=SEAT_PITCH, first=1):
    """A row of n seats numbered first..first+n-1, centred on local x = 0."""
    row = {"key": key, "y": num(y)}
    if category:
        row["category"] = category
    row["range"] = {"from": first, "to": first + n - 1}
    row["x0"] = num(-(n - 1) * dx / 2)
    row["dx"] = dx
    return row


def section(key, label, rows, category=None, origin=None, rotation=None):
    s = {"key": key, "label": label}
    if category:
        s["category"] = category
    if origin is not None:
        s["origin"] = {"x": num(origin[0]), "y": num(origin[1])}
    if rotation is not None:
        r = round(rotation % 360, 2)
        s["rotation"] = int(r) if r == int(r) else r
    s["rows"] = rows
    return s


def polar(center, radius, phi_deg):
    """A point at angle phi (degrees, from +x towards +y, i.e. clockwise on screen)."""
    a = math.radians(phi_deg)
    return (center[0] + radius * math.cos(a), center[1] + radius * math.sin(a))


def facing_rotation(phi_deg):
    """Rotation of a section whose back (local +y) points along angle phi, away from the
    stage or pitch: R(theta) * (0, 1) = (cos phi, sin phi) gives theta = phi - 90."""
    return (phi_deg - 90) % 360


def sector_rows(d_first, d_step, count, half_angle_deg, margin, first_row=1, category=None):
    """Straight range rows of a fan-shaped section: row r lies at local y = d (distance from
    the fan's centre point) and stays `margin` units inside the rays at +-half_angle.
    Rows too short for two seats are left out (their numbers are skipped)."""
    rows = []
    t = math.tan(math.radians(half_angle_deg))
    for r in range(count):
        d = d_first + r * d_step
        half_width = d * t - margin
        n = int(math.floor(2 * half_width / SEAT_PITCH + 1e-9)) + 1 if half_width >= 0 else 0
        if n >= 2:
            rows.append(range_row(str(first_row + r), 0, n, category))
            rows[-1]["y"] = num(d)
    return rows


# --------------------------------------------------------------------------------------------
# Theatre: listed seats on arcs around the stage.

def arc_seats(n, radius, center_y, spacing):
    """n seats on a circle around (0, center_y), `spacing` apart along the arc, symmetric
    about x = 0, numbered 1..n with x increasing."""
    step = spacing / radius
    seats = []
    for k in range(n):
        a = (k - (n - 1) / 2) * step
        seats.append({"key": str(k + 1), "x": num(radius * math.sin(a)),
                      "y": num(center_y + radius * math.cos(a))})
    return seats


def arc_count(radius, half_width, spacing):
    """Seats that fit on the arc between x = -half_width and x = +half_width."""
    return int(math.floor(2 * radius * math.asin(half_width / radius) / spacing)) + 1


def theatre():
    spacing = 11  # along the arc: a theatre seat is a little wider than a stadium seat
    # Stalls: the stage front is the line y = 0 (stage above it); rows are arcs around a point
    # behind the stage front; a cross aisle after row M, wheelchair spaces at its row ends and at
    # the ends of the back row.
    stalls_rows = []
    for r, letter in enumerate(ROW_LETTERS[:20]):          # A..V
        radius = 260 + 18 * r + (14 if r >= 12 else 0)
        n = arc_count(radius, 160 + 6 * r, spacing)
        seats = arc_seats(n, radius, -160, spacing)
        row = {"key": letter}
        premium = "C" <= letter <= "M"
        if premium:
            row["category"] = "premium"
            for seat in seats[:3] + seats[-3:]:          # extreme side views of premium rows
                seat["category"] = "standard"
        if letter in ("M", "V"):
            for i in (0, n - 1):
                seats[i]["accessible"] = True
            for i in (1, n - 2):
                seats[i]["companion"] = True
        row["seats"] = seats
        stalls_rows.append(row)

    # Circle: drawn below the stalls (it is the level above them, further from the stage);
    # two pillars in front of row E at local x = +-150 hide the stage from the seats behind them.
    circle_rows = []
    for r, letter in enumerate(ROW_LETTERS[:10]):          # A..K
        radius = 320 + 20 * r
        n = arc_count(radius, 220 + 6 * r, spacing)
        seats = arc_seats(n, radius, -300, spacing)
        row = {"key": letter}
        if letter <= "C":
            row["category"] = "premium"
        if "E" <= letter <= "H":
            for seat in seats:
                if any(abs(seat["x"] - px) <= 13 for px in (-150, 150)):
                    seat["category"] = "restricted"
                    seat["restricted_view"] = True
        row["seats"] = seats
        circle_rows.append(row)

    def box(key, label, origin, rotation):
        rows = [{"key": k, "y": y, "seats": [{"key": str(i + 1), "x": x}
                                            for i, x in enumerate((-18, -6, 6, 18))]}
                for k, y in (("A", 0), ("B", 16))]
        return section(key, label, rows, category="box", origin=origin, rotation=rotation)

    return {
        "name": "Riverside Theatre",
        "categories": [
            {"key": "premium", "label": "Premium", "color": "#b3261e"},
            {"key": "standard", "label": "Standard", "color": "#1d4ed8"},
            {"key": "restricted", "label": "Restricted view", "color": "#d97706"},
            {"key": "box", "label": "Box", "color": "#7e22ce"},
        ],
        "sections": [
            section("STALLS", "Stalls", stalls_rows, category="standard"),
            section("CIRCLE", "Dress Circle", circle_rows, category="standard", origin=(0, 640)),
            box("BOXL", "Box Left", (-350, 40), 60),
            box("BOXR", "Box Right", (350, 40), 300),
        ],
    }


# --------------------------------------------------------------------------------------------
# Arena: end stage at the top, three floor blocks, a horseshoe lower and upper bowl.

ARENA_CURVE_CENTER = (0, 100)


def arena():
    sections = []
    # Floor: blocks of 20 chairs, 40 rows, the first 10 premium; the stage front is at y = -580.
    for key, label, cx in (("FLA", "Floor A", -230), ("FLB", "Floor B", 0), ("FLC", "Floor C", 230)):
        rows = [range_row(str(r + 1), 16 * r, 20, "premium" if r < 10 else None) for r in range(40)]
        sections.append(section(key, label, rows, category="floor", origin=(cx, -540)))

    def side_rows(count, accessible_last_row):
        rows = [range_row(str(r + 1), 16 * r, 20) for r in range(count)]
        if accessible_last_row:
            # Wheelchair platform: the back row is seats 1-16 as a range plus four listed places
            # at the aisle end, each wheelchair space with a companion seat beside it.
            last = range_row(str(count), 16 * (count - 1), 16)
            last["x0"] = num(-(20 - 1) * SEAT_PITCH / 2)      # aligned with the 20-seat rows
            x = last["x0"] + 16 * SEAT_PITCH
            last["seats"] = [
                {"key": "17", "x": num(x), "accessible": True},
                {"key": "18", "x": num(x + 10), "companion": True},
                {"key": "19", "x": num(x + 20), "companion": True},
                {"key": "20", "x": num(x + 30), "accessible": True},
            ]
            rows[-1] = last
        return rows

    def bowl(level, first_number, side_x, side_centers, rows_count, curve_radius, curve_sectors):
        """One level: the west side (north to south), the curved south end (west to east), the
        east side (south to north). Side blocks face the floor (rotation 90 / 270), curve
        sectors face the centre of the curve."""
        category = "lower" if level == "Lower" else "upper"
        out = []
        number = first_number
        for cy in side_centers:                                   # west side, back to the west
            out.append(section(str(number), f"{level} {number}", side_rows(rows_count, level == "Lower"),
                               category, origin=(-side_x, cy), rotation=90))
            number += 1
        width = 180 / curve_sectors
        for i in range(curve_sectors):                            # phi 180 -> 0 (west -> east)
            # Every sector is drawn about the curve's centre: its rows are straight chords at
            # local y = radius, radius + 16, ... and the rotation turns it to face the centre.
            phi = 180 - width / 2 - i * width
            out.append(section(str(number), f"{level} {number}",
                               sector_rows(curve_radius, 16, rows_count, width / 2, 15),
                               category, origin=ARENA_CURVE_CENTER, rotation=facing_rotation(phi)))
            number += 1
        for cy in reversed(side_centers):                         # east side, back to the east
            out.append(section(str(number), f"{level} {number}", side_rows(rows_count, level == "Lower"),
                               category, origin=(side_x, cy), rotation=270))
            number += 1
        return out

    sections += bowl("Lower", 101, 430, (-470, -240, -10), 18, 430, 6)
    sections += bowl("Upper", 201, 800, (-700, -470, -240, -10), 22, 800, 8)
    return {
        "name": "Harbour Arena (end stage)",
        "categories": [
            {"key": "premium", "label": "Floor premium", "color": "#b3261e"},
            {"key": "floor", "label": "Floor", "color": "#ea580c"},
            {"key": "lower", "label": "Lower bowl", "color": "#1d4ed8"},
            {"key": "upper", "label": "Upper bowl", "color": "#059669"},
        ],
        "sections": sections,
    }


# --------------------------------------------------------------------------------------------
# Stadium: a 105 x 68 m pitch (2100 x 1360 units at 5 cm a unit), four stands in two tiers,
# fan-shaped corners; every row a range.

PITCH_HALF = (1050, 680)
STAND_FRONT = (1200, 800)      # |x| of the end stands' front rows, |y| of the side stands'
LOWER_ROWS, UPPER_ROWS = 29, 29
UPPER_START = 16 * LOWER_ROWS + 112   # local y of the upper tier's first row (concourse gap)
CORNER_MARGIN = 14   # corner rows stop this far inside the rays between fan sectors
# 8 side blocks of 27, 5 end blocks of 30 and 29 + 29 rows were chosen so that, with the fan
# corners, the stadium holds exactly 60,000 seats (main() checks it).


def stadium():
    sections = []
    side_blocks = [(-1050 + 300 * i, 27) for i in range(8)]      # (centre along the stand, seats)
    end_blocks = [(-640 + 320 * i, 30) for i in range(5)]

    def stand(prefix, name, rotation, front, blocks, lower_cat, upper_cat):
        """front(c, d) is the world point at position c along the stand, d back from its front
        row. Blocks are numbered 1.. in local x order."""
        out = []
        for tier, tier_name, rows, start, cats in (("L", "Lower", LOWER_ROWS, 0, lower_cat),
                                                    ("U", "Upper", UPPER_ROWS, UPPER_START, upper_cat)):
            for i, (c, n) in enumerate(blocks):
                cat = cats(i) if callable(cats) else cats
                first = 1 if tier == "L" else LOWER_ROWS + 1
                out.append(section(f"{prefix}{tier}{i + 1}", f"{name} {tier_name} {i + 1}",
                                   [range_row(str(first + r), 16 * r, n) for r in range(rows)],
                                   cat, origin=front(c, start), rotation=rotation))
        return out

    fx, fy = STAND_FRONT
    # South: back towards +y (rotation 0); local x runs west to east.
    south = stand("S", "South", 0, lambda c, d: (c, fy + d), side_blocks,
                  lambda i: "premium" if 2 <= i <= 5 else "standard", "standard")
    # North: rotation 180, local x runs east to west.
    north = stand("N", "North", 180, lambda c, d: (-c, -fy - d), side_blocks,
                  lambda i: "premium" if 2 <= i <= 5 else "standard", "standard")
    # West: rotation 90, local x runs north to south (world y).
    west = stand("W", "West", 90, lambda c, d: (-fx - d, c), end_blocks, "family", "economy")
    # East: rotation 270, local x runs south to north.
    east = stand("E", "East", 270, lambda c, d: (fx + d, -c), end_blocks, "standard", "economy")

    def corner(prefix, name, corner_point, phi_mid):
        out = []
        for tier, tier_name, rows, start, cat in (("L", "Lower", LOWER_ROWS, 0, "standard"),
                                                  ("U", "Upper", UPPER_ROWS, UPPER_START, "economy")):
            first = 1 if tier == "L" else LOWER_ROWS + 1
            for i, phi in enumerate((phi_mid - 30, phi_mid, phi_mid + 30)):
                out.append(section(f"{prefix}{tier}{i + 1}", f"{name} {tier_name} {i + 1}",
                                   sector_rows(start, 16, rows, 15, CORNER_MARGIN, first_row=first),
                                   cat, origin=corner_point, rotation=facing_rotation(phi)))
        return out

    sections += north
    sections += corner("NE", "North-East", (fx, -fy), 315)
    sections += east
    sections += corner("SE", "South-East", (fx, fy), 45)
    sections += south
    sections += corner("SW", "South-West", (-fx, fy), 135)
    sections += west
    sections += corner("NW", "North-West", (-fx, -fy), 225)
    return {
        "name": "Northgate Stadium",
        "categories": [
            {"key": "premium", "label": "Premium (side lower centre)", "color": "#b3261e"},
            {"key": "standard", "label": "Standard", "color": "#1d4ed8"},
            {"key": "family", "label": "Family stand", "color": "#0891b2"},
            {"key": "economy", "label": "Economy", "color": "#059669"},
        ],
        "sections": sections,
    }


# --------------------------------------------------------------------------------------------
# Output: one line per category, section header, range row and listed seat.

def dumps(doc):
    c = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    lines = ["{" + '"name":' + c(doc["name"]) + ",", '"categories":[']
    for i, cat in enumerate(doc["categories"]):
        lines.append(" " + c(cat) + ("," if i < len(doc["categories"]) - 1 else ""))
    lines.append("],")
    lines.append('"sections":[')
    for si, s in enumerate(doc["sections"]):
        head = {k: v for k, v in s.items() if k != "rows"}
        lines.append(" " + c(head)[:-1] + ',"rows":[')
        for ri, row in enumerate(s["rows"]):
            end = "," if ri < len(s["rows"]) - 1 else ""
            if "seats" not in row:
                lines.append("  " + c(row) + end)
                continue
            head = {k: v for k, v in row.items() if k != "seats"}
            lines.append("  " + c(head)[:-1] + ',"seats":[')
            for ki, seat in enumerate(row["seats"]):
                lines.append("   " + c(seat) + ("," if ki < len(row["seats"]) - 1 else ""))
            lines.append("  ]}" + end)
        lines.append(" ]}" + ("," if si < len(doc["sections"]) - 1 else ""))
    lines.append("]}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == doc
    return text


# --------------------------------------------------------------------------------------------
# Checks: the rules of SEATMAPS.md (what the server answers 422 for) ...

KEY_RE = re.compile(r"[A-Za-z0-9_.]{1,16}")
FIELDS = {
    "map": {"name", "categories", "sections"},
    "category": {"key", "label", "color"},
    "section": {"key", "label", "category", "origin", "rotation", "rows"},
    "origin": {"x", "y"},
    "row": {"key", "y", "category", "seats", "range", "x0", "dx"},
    "range": {"from", "to"},
    "seat": {"key", "x", "y", "category", "accessible", "restricted_view", "companion"},
}
MAX_RANGE, MAX_SEATS, MAX_COORD = 10_000, 200_000, 1_000_000


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate(doc):
    """Every problem as (JSON path, message); an empty list means the server accepts it."""
    problems = []

    def bad(path, message):
        problems.append((path, message))

    def obj(value, kind, path):
        if not isinstance(value, dict):
            bad(path, "must be an object")
            return False
        for k in value:
            if k not in FIELDS[kind]:
                bad(f"{path}.{k}" if path else k, "unknown field")
        return True

    def key(value, path):
        if not isinstance(value, str):
            bad(path, "must be a string")
        elif not KEY_RE.fullmatch(value):
            bad(path, "must be 1-16 characters of A-Z a-z 0-9 _ .")

    def text(value, path, required=True):
        if value is None:
            if required:
                bad(path, "is required")
        elif not isinstance(value, str):
            bad(path, "must be a string")

    def coord(value, path, required):
        if value is None:
            if required:
                bad(path, "is required")
            return False
        if not is_number(value):
            bad(path, "must be a number")
            return False
        if not math.isfinite(value) or abs(value) > MAX_COORD:
            bad(path, f"must be finite with magnitude at most {MAX_COORD}")
            return False
        return True

    def flag(value, path):
        if value is not None and not isinstance(value, bool):
            bad(path, "must be true or false")

    if not obj(doc, "map", ""):
        return problems
    name = doc.get("name")
    text(name, "name")
    if isinstance(name, str) and not name.strip():
        bad("name", "must not be empty")

    categories = set()
    cats = doc.get("categories")
    if not isinstance(cats, list) or not cats:
        bad("categories", "must be a non-empty array")
        cats = []
    for i, cat in enumerate(cats):
        p = f"categories[{i}]"
        if not obj(cat, "category", p):
            continue
        key(cat.get("key"), p + ".key")
        if cat.get("key") in categories:
            bad(p + ".key", "duplicate category key")
        categories.add(cat.get("key"))
        text(cat.get("label"), p + ".label")
        text(cat.get("color"), p + ".color")

    def category(value, path, inherited):
        if value is not None:
            if not isinstance(value, str):
                bad(path, "must be a string")
            elif value not in categories:
                bad(path, f"unknown category {value!r}")
            return value
        return inherited

    sections = doc.get("sections")
    if not isinstance(sections, list) or not sections:
        bad("sections", "must be a non-empty array")
        sections = []
    total = 0
    section_keys = set()
    for si, s in enumerate(sections):
        sp = f"sections[{si}]"
        if not obj(s, "section", sp):
            continue
        key(s.get("key"), sp + ".key")
        if s.get("key") in section_keys:
            bad(sp + ".key", "duplicate section key")
        section_keys.add(s.get("key"))
        text(s.get("label"), sp + ".label")
        s_cat = category(s.get("category"), sp + ".category", None)
        if "origin" in s and obj(s["origin"], "origin", sp + ".origin"):
            coord(s["origin"].get("x"), sp + ".origin.x", True)
            coord(s["origin"].get("y"), sp + ".origin.y", True)
        coord(s.get("rotation"), sp + ".rotation", False)
        rows = s.get("rows")
        if not isinstance(rows, list) or not rows:
            bad(sp + ".rows", "must be a non-empty array")
            rows = []
        row_keys = set()
        for ri, row in enumerate(rows):
            rp = f"{sp}.rows[{ri}]"
            if not obj(row, "row", rp):
                continue
            key(row.get("key"), rp + ".key")
            if row.get("key") in row_keys:
                bad(rp + ".key", "duplicate row key in this section")
            row_keys.add(row.get("key"))
            r_cat = category(row.get("category"), rp + ".category", s_cat)
            has_y = coord(row.get("y"), rp + ".y", "range" in row)
            seat_keys = set()
            if "range" not in row and "seats" not in row:
                bad(rp, "needs seats or a range")
            for f in ("x0", "dx"):
                if f in row and "range" not in row:
                    bad(f"{rp}.{f}", "only allowed with a range")
            if "range" in row and obj(row["range"], "range", rp + ".range"):
                lo, hi = row["range"].get("from"), row["range"].get("to")
                ok = True
                for f, v in (("from", lo), ("to", hi)):
                    if not is_int(v) or v < 0:
                        bad(f"{rp}.range.{f}", "must be a whole number >= 0")
                        ok = False
                x0_ok = coord(row.get("x0"), rp + ".x0", True)
                dx_ok = coord(row.get("dx"), rp + ".dx", True)
                if ok and lo > hi:
                    bad(rp + ".range", "from must be <= to")
                elif ok and hi - lo + 1 > MAX_RANGE:
                    bad(rp + ".range", f"more than {MAX_RANGE} seats")
                elif ok:
                    if len(str(hi)) > 16:
                        bad(rp + ".range.to", "seat keys must be at most 16 characters")
                    if x0_ok and dx_ok and abs(row["x0"] + (hi - lo) * row["dx"]) > MAX_COORD:
                        bad(rp + ".range", "the last seat's x exceeds the coordinate limit")
                    if r_cat is None:
                        bad(rp + ".category", "range seats have no category (row or section)")
                    seat_keys.update(str(n) for n in range(lo, hi + 1))
                    total += hi - lo + 1
            if "seats" in row:
                seats = row["seats"]
                if not isinstance(seats, list) or not seats:
                    bad(rp + ".seats", "must be a non-empty array")
                    seats = []
                for ki, seat in enumerate(seats):
                    kp = f"{rp}.seats[{ki}]"
                    if not obj(seat, "seat", kp):
                        continue
                    key(seat.get("key"), kp + ".key")
                    if seat.get("key") in seat_keys:
                        bad(kp + ".key", "duplicate seat key in this row")
                    seat_keys.add(seat.get("key"))
                    coord(seat.get("x"), kp + ".x", True)
                    if "y" in seat:
                        coord(seat["y"], kp + ".y", True)
                    elif not has_y:
                        bad(kp + ".y", "needs a y of its own or from its row")
                    if category(seat.get("category"), kp + ".category", r_cat) is None:
                        bad(kp + ".category", "seat has no category (seat, row or section)")
                    for f in ("accessible", "restricted_view", "companion"):
                        flag(seat.get(f), f"{kp}.{f}")
                    total += 1
    if total > MAX_SEATS:
        bad("sections", f"{total} seats, more than {MAX_SEATS}")
    return problems


# ... and geometry rules of our own, for documents that validate.

def transform(s):
    o = s.get("origin", {"x": 0, "y": 0})
    a = math.radians(s.get("rotation", 0))
    ca, sa = math.cos(a), math.sin(a)
    return lambda x, y: (o["x"] + x * ca - y * sa, o["y"] + x * sa + y * ca)


def seats_of(doc):
    """Yields (section, row, row index, seats) with each seat as a dict of key, x, y (local),
    category, flags; in seat order (by x)."""
    for s in doc["sections"]:
        for ri, row in enumerate(s["rows"]):
            cat = row.get("category", s.get("category"))
            seats = []
            if "range" in row:
                lo, hi = row["range"]["from"], row["range"]["to"]
                seats += [{"key": str(n), "x": row["x0"] + (n - lo) * row["dx"], "y": row["y"],
                           "category": cat} for n in range(lo, hi + 1)]
            for seat in row.get("seats", []):
                seats.append(dict(seat, y=seat.get("y", row.get("y")),
                                  category=seat.get("category", cat)))
            seats.sort(key=lambda t: t["x"])
            yield s, row, ri, seats


def check_geometry(doc, min_spacing=10 - 0.5, max_coord=100_000):
    problems = []
    cells = {}
    cell = 2 * min_spacing
    for s, row, ri, seats in seats_of(doc):
        where = f"{s['key']}-{row['key']}"
        if len({t["x"] for t in seats}) != len(seats):
            problems.append((where, "two seats with the same x: seat order is ambiguous"))
        numeric = [int(t["key"]) for t in seats if t["key"].isdigit()]
        if numeric != sorted(numeric):
            problems.append((where, "seat numbers do not increase with x"))
        for i, t in enumerate(seats):
            neighbours = seats[max(i - 1, 0):i] + seats[i + 1:i + 2]
            if t.get("accessible") and not any(u.get("companion") for u in neighbours):
                problems.append((f"{where}-{t['key']}", "accessible seat without a companion beside it"))
            if t.get("companion") and not any(u.get("accessible") for u in neighbours):
                problems.append((f"{where}-{t['key']}", "companion seat not beside an accessible seat"))
        to_world = transform(s)
        for t in seats:
            wx, wy = to_world(t["x"], t["y"])
            if abs(wx) > max_coord or abs(wy) > max_coord:
                problems.append((f"{where}-{t['key']}", f"outside +-{max_coord}"))
            cx, cy = int(math.floor(wx / cell)), int(math.floor(wy / cell))
            for nx in (cx - 1, cx, cx + 1):
                for ny in (cy - 1, cy, cy + 1):
                    for (ox, oy, label) in cells.get((nx, ny), ()):
                        if math.hypot(wx - ox, wy - oy) < min_spacing:
                            problems.append((f"{where}-{t['key']}", f"closer than {min_spacing} to {label}"))
            cells.setdefault((cx, cy), []).append((wx, wy, f"{where}-{t['key']}"))
    # Rows go front to back: the mean local y of a section's rows increases in document order.
    for s in doc["sections"]:
        last = None
        for s2, row, ri, seats in seats_of({"sections": [s]}):
            mean_y = sum(t["y"] for t in seats) / len(seats)
            if last is not None and mean_y <= last:
                problems.append((f"{s['key']}-{row['key']}", "row is not behind the previous one"))
            last = mean_y
    return problems


def summary(doc):
    counts = {c["key"]: 0 for c in doc["categories"]}
    flags = {"accessible": 0, "companion": 0, "restricted_view": 0}
    sections = {}
    for s, row, ri, seats in seats_of(doc):
        sections[s["key"]] = sections.get(s["key"], 0) + len(seats)
        for t in seats:
            counts[t["category"]] += 1
            for f in flags:
                flags[f] += bool(t.get(f))
    return sum(counts.values()), counts, flags, sections


MAPS = {
    "theatre.json": (theatre, lambda n: 1000 <= n <= 1500),
    "arena.json": (arena, lambda n: 15_000 <= n <= 20_000),
    "stadium.json": (stadium, lambda n: n == 60_000),
}
RANGES_ONLY = {"stadium.json"}   # every row a range: the 60,000 seats stay a small file


def main():
    check_only = "--check" in sys.argv[1:]
    failed = False
    for file_name, (build, size_ok) in MAPS.items():
        path = os.path.join(HERE, file_name)
        if not check_only:
            with open(path, "w", encoding="utf-8") as f:
                f.write(dumps(build()))
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        problems = validate(doc)
        if not problems:
            problems = check_geometry(doc)
        total, counts, flags, sections = summary(doc) if not problems else (0, {}, {}, {})
        if not problems and not size_ok(total):
            problems = [("sections", f"{total} seats is not the intended size")]
        if not problems and file_name in RANGES_ONLY:
            problems = [(f"{s['key']}-{r['key']}", "listed seats in a ranges-only map")
                        for s in doc["sections"] for r in s["rows"] if "seats" in r or "range" not in r]
        if problems:
            failed = True
            print(f"{file_name}: {len(problems)} problem(s)")
            for p, m in problems[:50]:
                print(f"  {p}: {m}")
            continue
        size = os.path.getsize(path)
        cats = ", ".join(f"{k} {v}" for k, v in counts.items())
        marks = ", ".join(f"{k} {v}" for k, v in flags.items() if v)
        print(f"{file_name}: ok, {total} seats in {len(sections)} sections ({cats})"
              f"{'; ' + marks if marks else ''}; {size} bytes")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
