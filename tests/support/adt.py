"""HL7 v2 ADT messages as a patient administration system sends them, and an MLLP
conversation with the listener over a real socket (tests/interop)."""

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

import hl7.mllp

AUTHORITY = "ROUNDS-DEMO"
_CONTROL = itertools.count(1)


@dataclass
class Person:
    ipp: str = "00900001"
    family: str = "LEFÈVRE"
    given: str = "Anne"
    birth: str = "19570412"
    sex: str = "F"
    authority: str = AUTHORITY


def adt(
    event: str,
    person: Person | None = None,
    *,
    location: str = "PLASTIC",
    visit: str = "V0001",
    at: str = "20261206101000",
    control: str | None = None,
    charset: str = "UNICODE UTF-8",
    merged_ipp: str | None = None,
    segments: list[str] | None = None,
) -> str:
    """One message, its segments joined by carriage returns."""
    person = person or Person()
    control = control or f"MSG{next(_CONTROL):06d}"
    pid3 = f"{person.ipp}^^^{person.authority}&1.2.250.1.71.4.2.7.1&ISO^PI" if person.ipp else ""
    lines = [
        f"MSH|^~\\&|GAM|CHU|ROUNDS|CHU|{at}||ADT^{event}^ADT_{event}|{control}|P|2.5|||||FRA|{charset}",
        f"EVN|{event}|{at}",
        f"PID|1||{pid3}||{person.family}^{person.given}^^^^^L||{person.birth}|{person.sex}",
    ]
    if merged_ipp:
        lines.append(f"MRG|{merged_ipp}^^^{AUTHORITY}^PI")
    lines.append(f"PV1|1|I|{location}^401^1^CHU" + "|" * 16 + f"{visit}^^^{AUTHORITY}^VN")
    lines.append(f"ZBE|MVT{control}^CHU|{at}||INSERT|N")
    lines.extend(segments or [])
    return "\r".join(lines)


def encoded(message: str, charset: str = "utf-8") -> bytes:
    return message.encode(charset)


@dataclass
class Ack:
    code: str
    control_id: str
    reason: str
    segments: list[str]


def read_ack(raw: bytes) -> Ack:
    segments = raw.decode("ascii").split("\r")
    msa = next(s for s in segments if s.startswith("MSA|")).split("|")
    return Ack(msa[1], msa[2], msa[3] if len(msa) > 3 else "", segments)


class Sender:
    """A patient administration system's connection: send, wait for the ACK."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> "Sender":
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, message: str | bytes) -> Ack:
        raw = message.encode("utf-8") if isinstance(message, str) else message
        self.writer.writeblock(raw)
        await self.writer.drain()
        return read_ack(await asyncio.wait_for(self.reader.readblock(), 10))

    async def close(self) -> None:
        self.writer.close()
