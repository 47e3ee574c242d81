"""The report's words and number/date formats, in Bahasa Indonesia (default) and English."""

from __future__ import annotations

import math
from datetime import date
from typing import Literal

from monitord.report.period import to_local

Language = Literal["id", "en"]
LANGUAGES: tuple[Language, ...] = ("id", "en")

# key: (Bahasa Indonesia, English)
_TEXT: dict[str, tuple[str, str]] = {
    "title": ("Laporan Ketersediaan Jaringan SPBE", "SPBE Network Availability Report"),
    "province": ("Provinsi", "Province"),
    "period": ("Periode", "Period"),
    "generated": ("Dibuat", "Generated"),
    "timezone": ("Zona waktu", "Time zone"),
    "source": ("Sumber data", "Data source"),
    "source_history": ("riwayat kejadian monitord", "monitord's event history"),
    "source_prometheus": ("metrik Prometheus (sampel per langkah)",
                          "Prometheus metrics (sampled per step)"),
    "summary": ("Ringkasan", "Summary"),
    "availability": ("Ketersediaan", "Availability"),
    "own_availability": ("Ketersediaan sendiri", "Own availability"),
    "slo": ("Target (SLO)", "Target (SLO)"),
    "below_slo": ("Di bawah target", "Below target"),
    "targets": ("Perangkat", "Devices"),
    "targets_below_slo": ("Perangkat di bawah target", "Devices below target"),
    "own_down": ("Henti sendiri", "Own downtime"),
    "parent_down": ("Tak terjangkau (induk)", "Unreachable (parent)"),
    "maintenance": ("Pemeliharaan", "Maintenance"),
    "no_data": ("Tanpa data", "No data"),
    "incidents": ("Insiden", "Incidents"),
    "mttr": ("MTTR", "MTTR"),
    "mtbf": ("MTBF", "MTBF"),
    "caused": ("Menyebabkan tak terjangkau", "Made unreachable"),
    "chart_kabupaten": ("Ketersediaan per kabupaten dibanding target",
                        "Availability per kabupaten against target"),
    "chart_kabupaten_note": (
        "Batang: ketersediaan sendiri; garis hitam: target (SLO). Merah: di bawah target.",
        "Bars: own availability; black line: target (SLO). Red: below target."),
    "chart_days": ("Insiden per hari", "Incidents per day"),
    "section_kabupaten": ("Per kabupaten", "Per kabupaten"),
    "section_sites_below": ("Lokasi di bawah target", "Sites below target"),
    "none_below": ("Semua lokasi memenuhi target.", "Every site met its target."),
    "section_longest": ("Insiden terlama", "Longest incidents"),
    "section_root_causes": ("Akar masalah: gangguan yang membuat perangkat lain tak terjangkau",
                            "Root causes: outages that made other devices unreachable"),
    "section_roles": ("Per peran perangkat", "Per device role"),
    "section_maintenance": ("Pemeliharaan terencana", "Planned maintenance"),
    "section_gaps": ("Saat monitord tidak berjalan", "When monitord was not running"),
    "section_targets": ("Semua perangkat", "All devices"),
    "section_definitions": ("Definisi", "Definitions"),
    "none": ("Tidak ada.", "None."),
    "kabupaten": ("Kabupaten", "Kabupaten"),
    "site": ("Lokasi", "Site"),
    "role": ("Peran", "Role"),
    "target": ("Perangkat", "Device"),
    "parent": ("Induk", "Parent"),
    "start": ("Mulai", "Start"),
    "end": ("Selesai", "End"),
    "duration": ("Durasi", "Duration"),
    "ongoing": ("berlanjut setelah periode", "continues after the period"),
    "before_period": ("sejak sebelum periode", "since before the period"),
    "affected": ("Perangkat terdampak", "Devices affected"),
    "reason": ("Alasan", "Reason"),
    "applies_to": ("Berlaku untuk", "Applies to"),
    "source_of": ("Asal", "From"),
    "not_configured": ("tidak lagi dalam konfigurasi", "no longer configured"),
    "no_data_value": ("tanpa data", "no data"),
    "day": ("Hari", "Day"),
    "def_availability": (
        "Ketersediaan = waktu terjangkau (naik atau menurun) ÷ waktu terukur. Waktu terukur = "
        "periode dikurangi waktu tanpa data dan pemeliharaan terencana. Waktu tak terjangkau "
        "karena induknya mati mengurangi ketersediaan ujung-ke-ujung.",
        "Availability = time reachable (up or degraded) ÷ measured time. Measured time = the "
        "period less no-data time and planned maintenance. Time unreachable because a parent "
        "was down counts against end-to-end availability."),
    "def_own": (
        "Ketersediaan sendiri = waktu terjangkau ÷ (waktu terjangkau + henti sendiri): gangguan "
        "induk dicatat sebagai gangguan induk (akar masalah), bukan gangguan perangkat ini. "
        "Angka inilah yang dibandingkan dengan target (SLO) perannya.",
        "Own availability = time reachable ÷ (time reachable + own downtime): a parent's outage "
        "is the parent's (the root cause), not this device's. This is the figure compared with "
        "its role's target (SLO)."),
    "def_no_data": (
        "Tanpa data: sebelum perangkat pertama kali dipantau, saat monitord tidak berjalan, dan "
        "saat statusnya belum diketahui. Tidak pernah dihitung sebagai naik.",
        "No data: before a device was first monitored, while monitord was not running, and "
        "while its state was unknown. Never counted as up."),
    "def_incidents": (
        "Insiden = satu masa henti sendiri (dari status mati hingga pulih), dipotong pada batas "
        "periode. MTTR = henti sendiri ÷ insiden; MTBF = waktu naik ÷ insiden. Untuk kelompok, "
        "waktu dijumlah atas perangkatnya, sehingga MTBF bisa lebih panjang dari periode.",
        "Incident = one own outage (from down until it recovered), clipped to the period. "
        "MTTR = own downtime ÷ incidents; MTBF = time up ÷ incidents. For a group, times are "
        "summed over its devices, so its MTBF can be longer than the period."),
    "def_groups": (
        "Angka lokasi, kabupaten, peran, dan provinsi dibobot waktu: jumlah waktu naik ÷ jumlah "
        "waktu terukur perangkatnya. Target kelompok adalah target perangkatnya, dibobot sama.",
        "Site, kabupaten, role and province figures are time-weighted: the sum of their "
        "devices' time up ÷ the sum of their measured time. A group's target is its devices' "
        "targets, weighted the same way."),
}

MISSING = "\u2013"  # an en dash: no value (no data, no incidents)

_MONTHS = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus",
           "September", "Oktober", "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}
_DURATION_UNITS = {"id": ("hari", "jam", "menit"), "en": ("d", "h", "min")}
_SECOND_UNIT = {"id": "detik", "en": "s"}


class Texts:
    """Words and formats of one language, with times shown in the report's zone."""

    def __init__(self, language: Language, timezone: str | None) -> None:
        self.language = language
        self._timezone = timezone
        self._index = LANGUAGES.index(language)

    def __call__(self, key: str) -> str:
        return _TEXT[key][self._index]

    def number(self, value: float, decimals: int) -> str:
        text = f"{value:,.{decimals}f}"
        if self.language == "id":  # 1.234,56: points group thousands, a comma marks decimals
            text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
        return text

    def percent(self, value: float | None, decimals: int = 2) -> str:
        if value is None:
            return MISSING
        # Truncated, never rounded up: 99.996% below a 100% target must not read "100%". The
        # epsilon keeps float noise (94.99999999 for exactly 95) from truncating a step down.
        factor = 10 ** decimals
        return f"{self.number(math.floor(value * factor + 1e-6) / factor, decimals)}%"

    def duration(self, seconds: float | None) -> str:
        """Rounded to the minute: 3 jam 5 menit / 3 h 5 min; 0 for none. Under a minute in
        seconds (45 detik), so a short outage that counts as an incident is not shown as 0."""
        if seconds is None:
            return MISSING
        if 0 < seconds < 59.5:
            return f"{max(1, round(seconds))} {_SECOND_UNIT[self.language]}"
        day_unit, hour_unit, minute_unit = _DURATION_UNITS[self.language]
        minutes = round(seconds / 60)
        days, rest = divmod(minutes, 24 * 60)
        hours, minutes = divmod(rest, 60)
        parts = [f"{days} {day_unit}"] if days else []
        if hours:
            parts.append(f"{hours} {hour_unit}")
        if minutes or not parts:
            parts.append(f"{minutes} {minute_unit}")
        return " ".join(parts[:2])  # two units are precise enough for a person

    def long_day(self, day: date) -> str:
        return f"{day.day} {_MONTHS[self.language][day.month - 1]} {day.year}"

    def short_day(self, day: date) -> str:
        return f"{day.day} {_MONTHS[self.language][day.month - 1][:3]}"

    def moment(self, seconds: float) -> str:
        local = to_local(seconds, self._timezone)
        separator = "." if self.language == "id" else ":"  # 14.30 is how Indonesian writes it
        return f"{self.long_day(local.date())} {local.hour:02d}{separator}{local.minute:02d}"
