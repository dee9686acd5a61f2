"""The raw telegram (``/api/v1/telegram``, ``/api/telegram``) parsed by dsmr-parser: its CRC holds, and
every value equals the JSON of the same instant (the simulator's clock is frozen between the two
requests). Belgian telegrams are parsed with dsmr-parser's Fluvius specification plus the DSMR 5
objects our Belgian meter adds (power-quality counters, frequency), Dutch ones with V5 and V4.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dsmr_parser import obis_references as obis
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import CosemParser, TelegramParser, ValueParser
from sim_testkit import TZ, http, local, running, scripted

from p1_edge.simulator.server import Simulator

START = local(2026, 3, 10, 18, 7, 30)
V5_EXTRAS = {
    "SHORT_POWER_FAILURE_COUNT",
    "LONG_POWER_FAILURE_COUNT",
    "POWER_EVENT_FAILURE_LOG",
    *(f"VOLTAGE_{kind}_L{n}_COUNT" for kind in ("SAG", "SWELL") for n in (1, 2, 3)),
}
BELGIAN_SUPERSET = {
    "checksum_support": True,
    "objects": [
        *specs.BELGIUM_FLUVIUS["objects"],
        *(o for o in specs.V5["objects"] if o["value_name"] in V5_EXTRAS),
        {
            "obis_reference": obis.EON_HU_FREQUENCY,  # 1-0:14.7.0
            "value_parser": CosemParser(ValueParser(Decimal)),
            "value_name": "FREQUENCY",
        },
    ],
}
SPECS: dict[str, dict[str, Any]] = {"be-dsmr5": BELGIAN_SUPERSET, "nl-dsmr5": specs.V5, "nl-dsmr4": specs.V4}
METERS = [("be", 5), ("nl", 5), ("nl", 4)]


def dec(value: object) -> Decimal:
    return Decimal(str(value))


async def read_both(sim: Simulator) -> tuple[dict[str, Any], Any]:
    """The JSON reading and the parsed telegram of one instant."""
    async with http(sim) as client:
        data_path, telegram_path = (
            ("/api/v1/data", "/api/v1/telegram") if sim.api == "v1" else ("/api/measurement", "/api/telegram")
        )
        data = (await client.get(data_path)).json()
        answer = await client.get(telegram_path)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain"
    parsed = TelegramParser(SPECS[sim.model.flavour.name]).parse(answer.text, throw_ex=True)
    return data, parsed


def v1_keys(data: dict[str, Any]) -> dict[str, Any]:
    """API v1's keys under API v2's names, so one check reads both."""
    if "energy_import_kwh" in data:
        return data
    renamed = {k.replace("total_power_", "energy_").replace("active_", ""): v for k, v in data.items()}
    renamed["tariff"] = data["active_tariff"]
    renamed["protocol_version"] = data["smr_version"]
    renamed["average_power_15m_w"] = data.get("active_power_average_w")
    renamed["monthly_power_peak_w"] = data.get("montly_power_peak_w")
    return renamed


def check_electricity(d: dict[str, Any], t: Any, belgian: bool) -> None:
    equipment = t.BELGIUM_EQUIPMENT_IDENTIFIER if belgian else t.EQUIPMENT_IDENTIFIER
    assert equipment.value == d["unique_id"]
    for n, (used, delivered) in enumerate([("USED", "DELIVERED")] * 2, start=1):
        assert getattr(t, f"ELECTRICITY_{used}_TARIFF_{n}").value == dec(d[f"energy_import_t{n}_kwh"])
        assert getattr(t, f"ELECTRICITY_{delivered}_TARIFF_{n}").value == dec(d[f"energy_export_t{n}_kwh"])
    assert dec(d["energy_import_kwh"]) == dec(d["energy_import_t1_kwh"]) + dec(d["energy_import_t2_kwh"])
    assert int(t.ELECTRICITY_ACTIVE_TARIFF.value) == d["tariff"]
    net = t.CURRENT_ELECTRICITY_USAGE.value - t.CURRENT_ELECTRICITY_DELIVERY.value
    assert net * 1000 == d["power_w"]
    for n in (1, 2, 3):
        positive = getattr(t, f"INSTANTANEOUS_ACTIVE_POWER_L{n}_POSITIVE").value
        negative = getattr(t, f"INSTANTANEOUS_ACTIVE_POWER_L{n}_NEGATIVE").value
        assert (positive - negative) * 1000 == d[f"power_l{n}_w"]
        current = getattr(t, f"INSTANTANEOUS_CURRENT_L{n}").value
        assert current == abs(dec(d[f"current_l{n}_a"]))  # the telegram's current has no sign
        if f"voltage_l{n}_v" in d:
            assert getattr(t, f"INSTANTANEOUS_VOLTAGE_L{n}").value == dec(d[f"voltage_l{n}_v"])


def check_quality(d: dict[str, Any], t: Any) -> None:
    assert t.SHORT_POWER_FAILURE_COUNT.value == d["any_power_fail_count"]
    assert t.LONG_POWER_FAILURE_COUNT.value == d["long_power_fail_count"]
    for n in (1, 2, 3):
        assert getattr(t, f"VOLTAGE_SAG_L{n}_COUNT").value == d[f"voltage_sag_l{n}_count"]
        assert getattr(t, f"VOLTAGE_SWELL_L{n}_COUNT").value == d[f"voltage_swell_l{n}_count"]
    assert t.POWER_EVENT_FAILURE_LOG.buffer_length == 1


def named(obj: Any, *names: str) -> Any:
    """The first of ``names`` the parsed object has (DSMR 4 names its M-Bus objects by gas)."""
    return next(getattr(obj, n) for n in names if hasattr(obj, n))


def check_mbus(data: dict[str, Any], t: Any, v1: bool) -> None:
    assert len(t.MBUS_DEVICES) == len(data["external"]) == 2
    for device, entry in zip(t.MBUS_DEVICES, data["external"], strict=True):
        kind = named(device, "MBUS_DEVICE_TYPE", "DEVICE_TYPE").value
        assert kind == {"gas_meter": 3, "water_meter": 7}[entry["type"]]
        assert (
            named(device, "MBUS_EQUIPMENT_IDENTIFIER", "EQUIPMENT_IDENTIFIER_GAS").value == entry["unique_id"]
        )
        reading = named(device, "MBUS_METER_READING", "HOURLY_GAS_METER_READING")
        assert reading.value == dec(entry["value"])
        local_time = (
            datetime.strptime(str(entry["timestamp"]), "%y%m%d%H%M%S")
            if v1
            else datetime.fromisoformat(entry["timestamp"])
        )
        assert reading.datetime == local_time.replace(tzinfo=TZ).astimezone(UTC)


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize(("country", "dsmr"), METERS, ids=[f"{c}{v}" for c, v in METERS])
async def test_telegram_values_equal_the_json_of_the_same_instant(api: str, country: str, dsmr: int) -> None:
    async with running(api=api, profile="home", country=country, dsmr=dsmr, start=START) as sim:
        data, t = await read_both(sim)
        second = sim.model.state.second
    d = v1_keys(data)
    belgian = country == "be"
    assert t.P1_MESSAGE_TIMESTAMP.value == datetime.fromtimestamp(second, UTC)
    if api == "v2":
        assert datetime.fromisoformat(d["timestamp"]).replace(tzinfo=TZ).astimezone(
            UTC
        ) == datetime.fromtimestamp(second, UTC)
    check_electricity(d, t, belgian)
    check_quality(d, t)
    check_mbus(data, t, api == "v1")
    if belgian:
        assert t.BELGIUM_CURRENT_AVERAGE_DEMAND.value * 1000 == dec(d["average_power_15m_w"])
        assert t.BELGIUM_MAXIMUM_DEMAND_MONTH.value * 1000 == dec(d["monthly_power_peak_w"])
        assert t.FREQUENCY.value == dec(d["frequency_hz"])
        assert len(t.BELGIUM_MAXIMUM_DEMAND_13_MONTHS) == 13
    else:
        assert int(t.P1_MESSAGE_HEADER.value) == d["protocol_version"] == (50 if dsmr == 5 else 42)
        assert "average_power_15m_w" not in data
        assert "active_power_average_w" not in data
    assert ("voltage_l1_v" in d) == (dsmr == 5)


async def test_thirteen_months_of_peaks_roll_over_with_the_month() -> None:
    """An old meter, 1000 W always, with one 5000 W quarter at the very end of March 2026."""
    last = local(2026, 3, 31, 23, 45)
    profile = scripted(1000, (last, 5000), (local(2026, 4, 1), 1000))
    async with running(api="v2", profile=profile, start=local(2026, 3, 31, 23, 50)) as sim:
        _, before = await read_both(sim)
        async with http(sim) as client:
            answer = await client.post("/_sim/advance", json={"seconds": 30 * 60})  # 2026-04-01 00:20
        assert answer.status_code == 200
        data, after = await read_both(sim)

    def entries(t: Any) -> list[tuple[datetime, datetime, Decimal]]:
        return [(e.datetime, e.occurred, e.value) for e in t.BELGIUM_MAXIMUM_DEMAND_13_MONTHS]

    def month(year: int, number: int) -> datetime:
        return local(year, number, 1).astimezone(UTC)

    def plain(year: int, number: int) -> tuple[datetime, datetime, Decimal]:
        """A month of the estimate: every quarter 1000 W, so its first quarter is the peak."""
        following = month(year + number // 12, number % 12 + 1)
        return following, month(year, number) + timedelta(minutes=15), Decimal("1.000")

    assert entries(before) == [plain(2025, 2 + i) if i < 11 else plain(2026, i - 10) for i in range(13)]
    march = (month(2026, 4), month(2026, 4), Decimal("5.000"))  # the quarter that ended at 00:00
    assert entries(after) == [*entries(before)[1:], march]
    assert after.BELGIUM_MAXIMUM_DEMAND_MONTH.value == Decimal("1.000")
    assert after.BELGIUM_MAXIMUM_DEMAND_MONTH.datetime == month(2026, 4) + timedelta(minutes=15)
    assert (data["monthly_power_peak_w"], data["monthly_power_peak_timestamp"]) == (
        1000.0,
        "2026-04-01T00:15:00",
    )


@pytest.mark.parametrize(
    ("start", "local_times", "flags"),
    [
        (  # autumn: 03:00 summer time becomes 02:00 winter time, the hour 02:00–03:00 comes twice
            datetime.fromisoformat("2026-10-25T02:59:58+02:00"),
            ["02:59:58", "02:59:59", "02:00:00", "02:00:01"],
            "SSWW",
        ),
        (  # spring: 02:00 winter time becomes 03:00 summer time
            datetime.fromisoformat("2026-03-29T01:59:58+01:00"),
            ["01:59:58", "01:59:59", "03:00:00", "03:00:01"],
            "WWSS",
        ),
    ],
    ids=["autumn", "spring"],
)
async def test_daylight_saving_changes(start: datetime, local_times: list[str], flags: str) -> None:
    """v2 times repeat in autumn (local, no offset); the telegram's season flag tells the passes apart."""
    seen: list[tuple[str, str, datetime]] = []
    async with running(api="v2", profile="home", start=start) as sim, http(sim) as client:
        for _ in local_times:
            stamp = (await client.get("/api/measurement")).json()["timestamp"]
            text = (await client.get("/api/telegram")).text
            line = next(x for x in text.split("\r\n") if x.startswith("0-0:1.0.0("))
            parsed = TelegramParser(BELGIAN_SUPERSET).parse(text).P1_MESSAGE_TIMESTAMP.value
            seen.append((stamp[11:], line[-2], parsed))
            await client.post("/_sim/advance", json={"seconds": 1})
    assert [s[0] for s in seen] == local_times
    assert "".join(s[1] for s in seen) == flags
    instants = [s[2] for s in seen]
    assert instants == [instants[0] + timedelta(seconds=i) for i in range(4)]  # one second apart, in UTC


async def test_dsmr4_sends_a_telegram_every_ten_seconds() -> None:
    start = local(2026, 3, 10, 12, 0, 5)
    async with running(api="v2", profile="home", dsmr=4, start=start) as sim, http(sim) as client:
        first = (await client.get("/api/measurement")).json()
        await client.post("/_sim/advance", json={"seconds": 4})  # 12:00:09
        same = (await client.get("/api/measurement")).json()
        await client.post("/_sim/advance", json={"seconds": 1})  # 12:00:10
        later = (await client.get("/api/measurement")).json()
    assert first["timestamp"] == same["timestamp"] == "2026-03-10T12:00:00"
    assert first == same
    assert later["timestamp"] == "2026-03-10T12:00:10"
    assert [e["timestamp"] for e in later["external"]] == ["2026-03-10T12:00:00"] * 2  # hourly


async def test_a_corrupted_telegram_fails_its_crc() -> None:
    async with running(api="v1", profile="home", start=START) as sim, http(sim) as client:
        text = (await client.get("/api/v1/telegram")).text
    TelegramParser(BELGIAN_SUPERSET).parse(text)  # intact: accepted
    broken = text.replace("1-0:1.8.1(0", "1-0:1.8.1(1", 1)
    with pytest.raises(InvalidChecksumError):
        TelegramParser(BELGIAN_SUPERSET).parse(broken)
