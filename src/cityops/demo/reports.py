"""The demo's citizens: realistic Vietnamese reports filed through the day, the ways real citizens file them.

Most come from a "citizen app" over Open311 (POST /open311/v2/requests.json, form-encoded, with the app's API key);
Open311 has no file upload (only a media_url), so some are filed with photos through the public form (GET /report
for its CSRF token, then a multipart POST /report) — JPEGs made here with EXIF GPS tags, so that the stripping of
location metadata shows. A few reports per round in the daytime, fewer at night; each at a point inside a real
commune of the province (near its centre, inside the province's boundary, and nearer its own centre than any other
commune's — the core places a point in the commune with the nearest centre), with a description written from
templates per category (streets, house numbers, landmarks and times vary), sometimes a contact.

Both doors are rate-limited per client address (CITYOPS_FEEDBACK_RATE_LIMIT per window): the demo runner raises
the limit for its own process, since every simulated citizen comes from 127.0.0.1.
"""

from __future__ import annotations

import io
import math
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from PIL import Image, ImageDraw

from cityops.clock import LOCAL_TZ
from cityops.geo import geometry
from cityops.geo.service import province_geometry, province_units

OPEN311_POST = "/open311/v2/requests.json"
FORM_PATH = "/report"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
JITTER_KM = 1.2  # how far from a commune's centre a report may be
PHOTO_SHARE = 0.25  # of reports filed through the public form with photos
CONTACT_SHARE = 0.4
DAY_HOURS = range(6, 22)  # local hours when citizens report most
DAY_COUNTS = (0, 1, 1, 1, 2, 3)  # reports per round, drawn from these in the daytime
NIGHT_COUNTS = (0, 0, 0, 0, 1)

STREETS = (
    "Lê Lợi",
    "Quang Trung",
    "Trần Phú",
    "Nguyễn Du",
    "Phan Bội Châu",
    "Lê Hồng Phong",
    "Nguyễn Thị Minh Khai",
    "Hồ Tùng Mậu",
    "Trường Chinh",
    "Nguyễn Văn Cừ",
    "Lý Thường Kiệt",
    "Hà Huy Tập",
    "Mai Hắc Đế",
    "Phong Định Cảng",
    "Nguyễn Sỹ Sách",
    "Lê Duẩn",
    "Đinh Công Tráng",
    "Hermann Gmeiner",
)
LANDMARKS = (
    "chợ",
    "trường tiểu học",
    "trạm y tế",
    "nhà văn hoá xóm",
    "cổng UBND",
    "ngã ba",
    "cầu",
    "trường mầm non",
    "bến xe",
    "chùa",
)
TIMES = ("sáng nay", "tối qua", "từ đầu tuần", "mấy hôm nay", "chiều qua", "gần một tháng nay", "từ hôm kia")
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Hồ", "Thái")
MIDDLE = ("Văn", "Thị", "Đình", "Hữu", "Ngọc", "Minh", "Quang", "Thanh")
GIVEN = ("An", "Bình", "Hoa", "Lan", "Hùng", "Dũng", "Hương", "Tâm", "Sơn", "Nga", "Khánh", "Phương")

# Per category (the Open311 service_code): how often it is reported, and what citizens write about it.
TEMPLATES: dict[str, tuple[int, tuple[str, ...]]] = {
    "o_ga_hu_hong_duong": (
        3,
        (
            "Ổ gà lớn trước số {so} đường {duong}, xe máy dễ ngã khi trời mưa.",
            "Mặt đường {duong} đoạn gần {moc} bị lún sâu, {thoi_gian} đã có người đi xe đạp bị ngã.",
            "Nắp hố ga trên đường {duong} trước số {so} bị vỡ, rất nguy hiểm cho người đi bộ ban đêm.",
            "Đường {duong} đoạn từ {moc} trở vào bong tróc nhiều ổ voi, ô tô phải đi lấn làn.",
        ),
    ),
    "den_chieu_sang": (
        2,
        (
            "Đèn đường trên đường {duong} đoạn trước số {so} bị tắt {thoi_gian}, buổi tối rất tối.",
            "Cả dãy đèn chiếu sáng gần {moc} không sáng, người dân đi lại buổi tối không an toàn.",
            "Cột đèn trước số {so} đường {duong} bị nghiêng, dây điện võng thấp xuống lòng đường.",
        ),
    ),
    "rac_thai_ve_sinh": (
        3,
        (
            "Rác thải sinh hoạt tập kết gần {moc} không được thu gom {thoi_gian}, bốc mùi hôi thối.",
            "Có người đổ trộm xà bần và rác ra bãi đất trống cạnh số {so} đường {duong}.",
            "Thùng rác công cộng trên đường {duong} đầy tràn ra vỉa hè, ruồi nhặng nhiều.",
        ),
    ),
    "ngap_ung": (
        2,
        (
            "Mưa to là đoạn đường {duong} trước số {so} ngập sâu gần nửa mét, xe chết máy nhiều.",
            "Cống thoát nước gần {moc} bị tắc, nước mưa tràn vào nhà dân {thoi_gian}.",
            "Rãnh thoát nước dọc đường {duong} bị đất đá lấp kín, nước không thoát được.",
        ),
    ),
    "tieng_on": (
        1,
        (
            "Quán karaoke gần {moc} hát to đến quá nửa đêm, người già và trẻ nhỏ không ngủ được.",
            "Xưởng cơ khí cạnh số {so} đường {duong} làm việc ồn ào cả ban đêm {thoi_gian}.",
        ),
    ),
    "trat_tu_xay_dung": (
        1,
        (
            "Công trình xây dựng tại số {so} đường {duong} để vật liệu tràn ra lòng đường, không che chắn.",
            "Nhà dân gần {moc} đang xây thêm tầng, nghi không có giấy phép, đổ bê tông cả ban đêm.",
        ),
    ),
    "lan_chiem_via_he": (
        2,
        (
            "Các quán ăn trên đường {duong} bày bàn ghế kín vỉa hè, người đi bộ phải xuống lòng đường.",
            "Gần {moc} có nhiều xe ô tô đỗ trên vỉa hè và lòng đường, gây ùn tắc giờ tan học.",
        ),
    ),
    "cap_nuoc": (
        2,
        (
            "Nước máy khu vực gần {moc} bị đục và có mùi lạ {thoi_gian}, không dùng để nấu ăn được.",
            "Đường ống nước trước số {so} đường {duong} bị vỡ, nước chảy lênh láng ra đường.",
            "Khu dân cư gần {moc} bị mất nước sinh hoạt {thoi_gian} mà không có thông báo.",
        ),
    ),
    "an_toan_giao_thong": (
        2,
        (
            "Ngã tư gần {moc} không có đèn tín hiệu, giờ cao điểm xe cộ tranh nhau rất dễ xảy ra tai nạn.",
            "Biển báo hạn chế tốc độ trên đường {duong} bị cây che khuất, xe tải chạy rất nhanh.",
            "Nhóm thanh niên thường xuyên đua xe trên đường {duong} vào buổi tối {thoi_gian}.",
        ),
    ),
    "thai_do_phuc_vu": (
        1,
        (
            "Tôi nộp hồ sơ ở bộ phận một cửa {thoi_gian}, cán bộ tiếp nhận thiếu nhiệt tình, hẹn đi hẹn lại.",
            "Hồ sơ đất đai của gia đình tôi nộp đã quá hẹn nhưng không được giải thích lý do chậm trễ.",
        ),
    ),
    "an_toan_thuc_pham": (
        3,
        (
            "Bếp ăn của quán cơm gần {moc} mất vệ sinh, có chuột chạy trong khu chế biến.",
            "Gia đình tôi ăn bánh mì mua ở số {so} đường {duong} {thoi_gian} thì bị đau bụng, nôn ói.",
            "Cơ sở giết mổ gia cầm gần {moc} không có giấy kiểm dịch, xả nước thải ra mương.",
            "Nhiều hàng rong trước cổng {moc} bán đồ ăn không rõ nguồn gốc cho học sinh.",
        ),
    ),
    "o_nhiem_moi_truong": (
        2,
        (
            "Nhà máy gần {moc} xả khói đen và mùi khét vào ban đêm, người dân khó thở.",
            "Nước thải từ trại chăn nuôi gần {moc} chảy thẳng ra kênh, cá chết nổi trắng {thoi_gian}.",
            "Bụi từ các xe chở đất trên đường {duong} rất nhiều, nhà dân hai bên phải đóng cửa cả ngày.",
        ),
    ),
}


@dataclass(frozen=True)
class Spot:
    """A commune the demo places reports in: its code, name and centre."""

    code: str
    name: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Draft:
    """One report the demo is about to file."""

    category: str
    description: str
    latitude: float
    longitude: float
    commune: str
    place_text: str
    attributes: dict[str, str] = field(default_factory=dict)
    contact: dict[str, str] = field(default_factory=dict)


@dataclass
class Filed:
    """What one round filed."""

    open311: int = 0
    form: int = 0
    photos: int = 0
    refused: int = 0
    codes: list[str] = field(default_factory=list)


def spots(province_code: str) -> list[Spot]:
    """The communes of the province with a centre."""
    return [
        Spot(unit.code, unit.name_vi, unit.latitude, unit.longitude)
        for unit in province_units(province_code)
        if unit.kind == "commune" and unit.latitude is not None and unit.longitude is not None
    ]


def describe(category: str, rng: random.Random) -> str:
    """A citizen's description of a problem of this category."""
    _weight, texts = TEMPLATES[category]
    text = rng.choice(texts)
    return text.format(
        so=rng.randint(2, 250),
        duong=rng.choice(STREETS),
        moc=rng.choice(LANDMARKS),
        thoi_gian=rng.choice(TIMES),
    )


def point_in(
    spot: Spot, all_spots: Sequence[Spot], shape: dict[str, Any] | None, rng: random.Random
) -> tuple[float, float]:
    """A point near a commune's centre, inside the province, that the core places in that commune."""
    for _attempt in range(30):
        distance = JITTER_KM * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        latitude = spot.latitude + distance * math.cos(angle) / 111.0
        longitude = spot.longitude + distance * math.sin(angle) / (111.0 * math.cos(math.radians(spot.latitude)))
        if shape is not None and not geometry.contains(shape, longitude, latitude):
            continue
        nearest = min(
            all_spots, key=lambda other: geometry.haversine_km(latitude, longitude, other.latitude, other.longitude)
        )
        if nearest.code == spot.code:
            return round(latitude, 6), round(longitude, 6)
    return spot.latitude, spot.longitude


def _contact(rng: random.Random) -> dict[str, str]:
    if rng.random() >= CONTACT_SHARE:
        return {}
    family, middle, given = rng.choice(FAMILY), rng.choice(MIDDLE), rng.choice(GIVEN)
    contact = {
        "first_name": f"{middle} {given}",
        "last_name": family,
        "phone": f"09{rng.randint(10_000_000, 99_999_999)}",
    }
    if rng.random() < 0.3:
        contact["email"] = f"{given.lower()}.{rng.randint(10, 99)}@example.vn".replace("ơ", "o")
    return contact


def draft(
    all_spots: Sequence[Spot],
    shape: dict[str, Any] | None,
    rng: random.Random,
    required: dict[str, dict[str, list[str]]] | None = None,
) -> Draft:
    """A report: a category (by how often it is reported), a description, a point in a commune, perhaps a contact."""
    categories = list(TEMPLATES)
    category = rng.choices(categories, weights=[TEMPLATES[code][0] for code in categories])[0]
    spot = rng.choice(all_spots)
    latitude, longitude = point_in(spot, all_spots, shape, rng)
    attributes = {code: rng.choice(values) for code, values in (required or {}).get(category, {}).items() if values}
    return Draft(
        category=category,
        description=describe(category, rng),
        latitude=latitude,
        longitude=longitude,
        commune=spot.code,
        place_text=f"Đường {rng.choice(STREETS)}, {spot.name}",
        attributes=attributes,
        contact=_contact(rng),
    )


def photo(latitude: float, longitude: float, rng: random.Random, size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG "photo" of the problem (a street scene drawn in a few shapes), with EXIF GPS tags of the point."""
    image = Image.new("RGB", size, (rng.randint(90, 140), rng.randint(120, 170), rng.randint(150, 210)))
    pen = ImageDraw.Draw(image)
    width, height = size
    pen.rectangle((0, height // 2, width, height), fill=(rng.randint(70, 110),) * 3)  # the road
    for _ in range(rng.randint(2, 5)):  # potholes, rubbish, puddles
        x, y = rng.randint(0, width - 80), rng.randint(height // 2, height - 40)
        pen.ellipse((x, y, x + rng.randint(30, 120), y + rng.randint(15, 40)), fill=(rng.randint(20, 80),) * 3)
    exif = image.getexif()
    exif[0x010F] = "cityops demo phone"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if latitude >= 0 else "S"
    gps[2] = _dms(abs(latitude))
    gps[3] = "E" if longitude >= 0 else "W"
    gps[4] = _dms(abs(longitude))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80, exif=exif)
    return buffer.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 2)
    return (float(degrees), float(minutes), seconds)


def reports_this_round(now: datetime, rng: random.Random) -> int:
    """How many reports the citizens file in one round: more in the daytime."""
    hour = now.astimezone(LOCAL_TZ).hour
    return rng.choice(DAY_COUNTS if hour in DAY_HOURS else NIGHT_COUNTS)


class FilingError(RuntimeError):
    """The app refused or could not take a report."""


@dataclass
class Citizens:
    """Files the demo's reports over Open311 (most) and through the public form with photos (some)."""

    base_url: str
    api_key: str
    province_code: str
    clock: Callable[[], datetime]
    rng: random.Random = field(default_factory=random.Random)
    rounds: int = 0
    filed: int = 0

    def __post_init__(self) -> None:
        self.spots = spots(self.province_code)
        self.shape = province_geometry(self.province_code)
        self._http = httpx.Client(base_url=self.base_url, timeout=30)
        self._form = httpx.Client(base_url=self.base_url, timeout=30)  # a browser: its own cookies
        self._required: dict[str, dict[str, list[str]]] | None = None

    def close(self) -> None:
        self._http.close()
        self._form.close()

    def required_attributes(self) -> dict[str, dict[str, list[str]]]:
        """Each service's required list attributes and their values, read once from the Open311 definitions."""
        if self._required is None:
            required: dict[str, dict[str, list[str]]] = {}
            services = self._http.get("/open311/v2/services.json")
            services.raise_for_status()
            for service in services.json():
                if not service.get("metadata"):
                    continue
                definition = self._http.get(f"/open311/v2/services/{service['service_code']}.json")
                definition.raise_for_status()
                for attribute in definition.json().get("attributes", []):
                    if attribute.get("required") and attribute.get("variable", True):
                        values = [str(value["key"]) for value in attribute.get("values") or []]
                        required.setdefault(service["service_code"], {})[attribute["code"]] = values
            self._required = required
        return self._required

    def round(self) -> Filed:
        """File this round's reports; the first round files one of each kind so that both doors are seen at once."""
        now = self.clock()
        first = self.rounds == 0
        self.rounds += 1
        count = 2 if first else reports_this_round(now, self.rng)
        result = Filed()
        for index in range(count):
            report = draft(self.spots, self.shape, self.rng, self.required_attributes())
            with_photo = index == 1 if first else self.rng.random() < PHOTO_SHARE
            try:
                if with_photo:
                    photos = self.file_with_photos(report, self.rng.randint(1, 2))
                    result.form += 1
                    result.photos += photos[1]
                    result.codes.append(photos[0])
                else:
                    result.codes.append(self.file_open311(report))
                    result.open311 += 1
            except FilingError:
                result.refused += 1
        self.filed += result.open311 + result.form
        return result

    def file_open311(self, report: Draft) -> str:
        """POST the report as the citizen app would; its tracking code."""
        form: dict[str, str] = {
            "api_key": self.api_key,
            "service_code": report.category,
            "lat": f"{report.latitude:.6f}",
            "long": f"{report.longitude:.6f}",
            "address_string": report.place_text,
            "description": report.description,
            "device_id": f"demo-{self.rng.randint(1000, 9999)}",
            **report.contact,
            **{f"attribute[{code}]": value for code, value in report.attributes.items()},
        }
        answer = self._http.post(OPEN311_POST, data=form)
        if answer.status_code != 200:
            raise FilingError(f"Open311 {answer.status_code}: {answer.text[:300]}")
        return str(answer.json()[0]["service_request_id"])

    def file_with_photos(self, report: Draft, count: int) -> tuple[str, int]:
        """Fill in the public form (CSRF token from its page) with photos; the tracking code and photos sent."""
        page = self._form.get(FORM_PATH)
        found = TOKEN.search(page.text)
        if page.status_code != 200 or found is None:
            raise FilingError(f"form {page.status_code}: no CSRF token")
        name = " ".join(part for part in (report.contact.get("last_name"), report.contact.get("first_name")) if part)
        data = {
            "csrf_token": found[1],
            "category": report.category,
            "description": report.description,
            "latitude": f"{report.latitude:.6f}",
            "longitude": f"{report.longitude:.6f}",
            "commune": report.commune,
            "place_text": report.place_text,
            "name": name,
            "phone": report.contact.get("phone", ""),
            "email": report.contact.get("email", ""),
            "consent": "1" if report.contact else "",
            **{f"attr.{report.category}.{code}": value for code, value in report.attributes.items()},
        }
        files = [
            (
                "photos",
                (
                    f"IMG_{self.rng.randint(1000, 9999)}.jpg",
                    photo(report.latitude, report.longitude, self.rng),
                    "image/jpeg",
                ),
            )
            for _ in range(count)
        ]
        answer = self._form.post(FORM_PATH, data=data, files=files, follow_redirects=False)
        location = answer.headers.get("location", "")
        path = location.split("?", 1)[0].rstrip("/")
        code = path.rsplit("/", 1)[-1] if answer.status_code in (302, 303) and path.startswith(FORM_PATH + "/") else ""
        if not code:
            raise FilingError(f"form {answer.status_code}: {answer.text[:300]}")
        return code, count
