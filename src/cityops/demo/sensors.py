"""The demo's sensors: each commune's camera recorder (NVR) publishes how many of its cameras are online, as JSON on
an MQTT broker, for the demo's mqtt feed to subscribe to.

    topic    <root>/antt/camera/<commune code>                   e.g. cityops-demo-1a2b3c4d/antt/camera/16681
    payload  {"deviceId": "nvr-16681", "ts": 1795747500000, "camera": 3, "camera_truc_tuyen": 2}

`ts` is milliseconds since 1970; each other field is an indicator's value, named by the indicator's code without
its domain. A broker is used only when one answers a connection within a few seconds; otherwise the demo goes on
without MQTT.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

DEFAULT_BROKER = "127.0.0.1:1883"
CONNECT_SECONDS = 3.0
SUBJECT_LEVEL = 3  # <root>/antt/camera/<commune>: the commune is the fourth level


def parse_address(text: str) -> tuple[str, int] | None:
    """host:port (the port 1883 when left out); None for an empty text, ValueError for a wrong one."""
    text = text.strip()
    if not text:
        return None
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a broker address (host:port): {text[:60]!r}")
    return host, int(port)


def broker_problem(host: str, port: int, timeout: float = CONNECT_SECONDS) -> str | None:
    """Why no MQTT broker can be used at host:port (None when one accepts a connection)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    accepted = threading.Event()
    answer: list[str] = []

    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        answer.append(str(reason))
        if not reason.is_failure:
            accepted.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
        client.loop_start()
        if not accepted.wait(timeout):
            return answer[0] if answer else "no answer to CONNECT"
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        client.loop_stop()
        client.disconnect()


def topic_root(install: str) -> str:
    """The first level of the demo's topics: one per installation, so that two demos on one broker stay apart."""
    return f"cityops-demo-{install}"


def feed_settings(host: str, port: int, install: str, indicator_codes: Iterable[str]) -> dict[str, Any]:
    """The settings of the mqtt feed that subscribes to these sensors (see connectors/mqtt)."""
    return {
        "host": host,
        "port": port,
        "topics": [f"{topic_root(install)}/antt/camera/+"],
        "qos": 1,
        "client_id": f"cityops-demo-{install}",
        "mapping": {
            "records": "",
            "subject": {"topic": SUBJECT_LEVEL},
            "period": {"path": "ts", "format": "epoch_ms"},
            "source_ref": "deviceId",
            "observations": [
                {"indicator": {"value": code}, "value": code.split(".", 1)[1]} for code in sorted(indicator_codes)
            ],
        },
    }


@dataclass
class CameraSensors:
    """Publishes the recorders' readings (QoS 1) on one broker connection, kept open by paho's network thread."""

    host: str
    port: int
    install: str

    def __post_init__(self) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"cityops-demo-sensors-{self.install}", protocol=paho.MQTTv311
        )
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def publish(self, moment: datetime, readings: Mapping[str, Mapping[str, float]]) -> int:
        """One message per commune: its readings (indicator code → value) at a moment; returns how many."""
        stamp = int(moment.timestamp() * 1000)
        for commune, values in readings.items():
            payload = {"deviceId": f"nvr-{commune}", "ts": stamp}
            payload.update({code.split(".", 1)[1]: value for code, value in values.items()})
            self.client.publish(f"{topic_root(self.install)}/antt/camera/{commune}", orjson.dumps(payload), qos=1)
        return len(readings)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
