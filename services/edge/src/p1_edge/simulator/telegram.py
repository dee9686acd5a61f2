"""A meter reading as the DSMR telegram the smart meter sends on its P1 port (``/api/v1/telegram``,
``/api/telegram``): OBIS lines in the flavour's order, CRLF line ends, and the CRC16 (ARC: polynomial
0xA001 reflected, initial value 0) over everything from ``/`` to ``!`` inclusive, as 4 hex digits.

Times are local with DSMR's season flag (``S`` summer time, ``W`` winter time), which is what tells the
two passes of the repeated autumn hour apart.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from p1_edge.simulator.reading import MeterReading, MonthPeak, Phase

CRLF = "\r\n"
_PHASE_CODE = {1: 2, 2: 4, 3: 6}  # L1, L2, L3 are 2x, 4x, 6x in OBIS power codes (21.7.0, 41.7.0, …)
_VOLTAGE_CODE = {1: 32, 2: 52, 3: 72}  # and 3x, 5x, 7x in voltage/current codes


def crc16(text: str) -> int:
    crc = 0
    for byte in text.encode("latin-1"):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def dsmr_time(ts: datetime) -> str:
    return f"{ts:%y%m%d%H%M%S}{'S' if ts.dst() else 'W'}"


def _kwh(wh: int) -> str:
    return f"({wh // 1000:06d}.{wh % 1000:03d}*kWh)"


def _kw(w: int) -> str:
    return f"({w // 1000:02d}.{w % 1000:03d}*kW)"


def _m3(litres: int) -> str:
    return f"({litres // 1000:05d}.{litres % 1000:03d}*m3)"


def _amps(current: Decimal, decimals: int) -> str:
    width = 3 + (decimals + 1 if decimals else 0)
    return f"({abs(current):0{width}.{decimals}f}*A)"


def _registers(r: MeterReading) -> list[str]:
    return [
        f"1-0:1.8.1{_kwh(r.import_wh[0])}",
        f"1-0:1.8.2{_kwh(r.import_wh[1])}",
        f"1-0:2.8.1{_kwh(r.export_wh[0])}",
        f"1-0:2.8.2{_kwh(r.export_wh[1])}",
        f"0-0:96.14.0({r.tariff:04d})",
    ]


def _totals(r: MeterReading) -> list[str]:
    return [f"1-0:1.7.0{_kw(max(r.power_w, 0))}", f"1-0:2.7.0{_kw(max(-r.power_w, 0))}"]


def _phase_powers(phases: tuple[Phase, ...]) -> list[str]:
    offtake = [f"1-0:{_PHASE_CODE[p.n]}1.7.0{_kw(max(p.power_w, 0))}" for p in phases]
    injection = [f"1-0:{_PHASE_CODE[p.n]}2.7.0{_kw(max(-p.power_w, 0))}" for p in phases]
    return offtake + injection


def _voltages(phases: tuple[Phase, ...]) -> list[str]:
    return [
        f"1-0:{_VOLTAGE_CODE[p.n]}.7.0({p.voltage_dv // 10:03d}.{p.voltage_dv % 10}*V)"
        for p in phases
        if p.voltage_dv is not None
    ]


def _currents(r: MeterReading) -> list[str]:
    decimals = r.flavour.current_decimals
    return [f"1-0:{_VOLTAGE_CODE[p.n] - 1}.7.0{_amps(p.current_a, decimals)}" for p in r.phases]


def _quality(r: MeterReading) -> list[str]:
    log = "".join(f"({dsmr_time(f.ended)})({f.duration_s:010d}*s)" for f in reversed(r.failure_log))
    lines = [
        f"0-0:96.7.21({r.power_failures:05d})",
        f"0-0:96.7.9({r.long_power_failures:05d})",
        f"1-0:99.97.0({len(r.failure_log)})(0-0:96.7.19){log}",
    ]
    lines += [f"1-0:{_VOLTAGE_CODE[n]}.32.0({c:05d})" for n, c in enumerate(r.sags, start=1)]
    lines += [f"1-0:{_VOLTAGE_CODE[n]}.36.0({c:05d})" for n, c in enumerate(r.swells, start=1)]
    return lines


def _capacity(r: MeterReading, history: tuple[MonthPeak, ...]) -> list[str]:
    if r.capacity is None:
        return []
    peak = r.capacity.month_peak
    entries = "".join(f"({dsmr_time(h.month_end)})({dsmr_time(h.peak.at)}){_kw(h.peak.w)}" for h in history)
    return [
        f"1-0:1.4.0{_kw(r.capacity.average_w)}",
        f"1-0:1.6.0({dsmr_time(peak.at)}){_kw(peak.w)}",
        f"0-0:98.1.0({len(history)})(1-0:1.6.0)(1-0:1.6.0){entries}",
    ]


def _mbus(r: MeterReading) -> list[str]:
    belgian = r.flavour.country == "be"
    lines = []
    for m in r.mbus:
        ch = m.channel
        lines += [f"0-{ch}:24.1.0({m.device_type:03d})", f"0-{ch}:96.1.{1 if belgian else 0}({m.unique_id})"]
        if belgian and m.kind == "gas_meter":  # Belgian gas: valve state and the 24.2.3 register
            lines += [f"0-{ch}:24.4.0(1)", f"0-{ch}:24.2.3({dsmr_time(m.captured)}){_m3(m.litres)}"]
        else:
            lines.append(f"0-{ch}:24.2.1({dsmr_time(m.captured)}){_m3(m.litres)}")
    return lines


def _belgian(r: MeterReading, history: tuple[MonthPeak, ...]) -> list[str]:
    frequency = r.frequency_chz or 0
    return [
        "0-0:96.1.4(50217)",
        f"0-0:96.1.1({r.unique_id})",
        f"0-0:1.0.0({dsmr_time(r.at)})",
        *_registers(r),
        *_capacity(r, history),
        *_totals(r),
        *_phase_powers(r.phases),
        *_voltages(r.phases),
        *_currents(r),
        f"1-0:14.7.0({frequency // 100:02d}.{frequency % 100:02d}*Hz)",
        *_quality(r),
        "0-0:96.3.10(1)",
        "0-0:17.0.0(999.9*kW)",
        "1-0:31.4.0(999*A)",
        "0-0:96.13.0()",
        *_mbus(r),
    ]


def _dutch(r: MeterReading) -> list[str]:
    dsmr4 = r.flavour.dsmr == 4
    return [
        f"1-3:0.2.8({r.flavour.smr_version})",
        f"0-0:1.0.0({dsmr_time(r.at)})",
        f"0-0:96.1.1({r.unique_id})",
        *_registers(r),
        *_totals(r),
        *_quality(r),
        *(["0-0:96.13.1()"] if dsmr4 else []),
        "0-0:96.13.0()",
        *_voltages(r.phases),
        *_currents(r),
        *_phase_powers(r.phases),
        *_mbus(r),
    ]


def render(r: MeterReading, history: tuple[MonthPeak, ...] = ()) -> str:
    """The whole telegram, CRC included. ``history`` is the Belgian 13-month peak list."""
    lines = _belgian(r, history) if r.flavour.country == "be" else _dutch(r)
    body = CRLF.join([f"/{r.flavour.ident}", "", *lines, "!"])
    return f"{body}{crc16(body):04X}{CRLF}"
