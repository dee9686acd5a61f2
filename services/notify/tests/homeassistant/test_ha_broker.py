"""``mqtt.url`` read into a broker address; the password is in no text the address gives."""

import pytest

from p1_notify.homeassistant.broker import Broker, parse_url


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("mqtt://127.0.0.1:1883", Broker("127.0.0.1", 1883)),
        ("mqtt://broker", Broker("broker", 1883)),
        ("mqtts://broker", Broker("broker", 8883, tls=True)),
        ("mqtt://ha:s%40cret@broker:1884/", Broker("broker", 1884, False, "ha", "s@cret")),
        ("mqtt://ha@broker", Broker("broker", 1883, False, "ha", None)),
    ],
)
def test_urls_the_config_may_hold(url: str, broker: Broker) -> None:
    assert parse_url(url) == broker


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://u:topsecret@broker", "mqtt:// or mqtts://"),
        ("mqtt://u:topsecret@", "no host"),
        ("mqtt://u:topsecret@broker:99999", "valid port"),
        ("mqtt://u:topsecret@broker:x", "valid port"),
        ("mqtt://u:topsecret@broker/topic", "no path"),
        ("mqtt://:topsecret@broker", "without a user"),
        ("broker:1883", "mqtt:// or mqtts://"),
    ],
)
def test_a_bad_url_is_refused_naming_the_fault_not_the_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as caught:
        parse_url(url)
    assert "topsecret" not in str(caught.value)


def test_the_password_is_in_neither_repr_nor_description() -> None:
    broker = parse_url("mqtts://ha:topsecret@broker:8883")
    assert broker.password == "topsecret"
    assert "topsecret" not in repr(broker)
    assert broker.describe() == "mqtts://ha@broker:8883"
