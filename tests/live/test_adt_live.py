"""The demo hospital takes its patients from a patient administration system, as in
`make run` (docs/interop.md): `manage.py adt_listen` (a real process, on the cluster's
database) acknowledges interop/examples/demo-adt.hl7 sent over MLLP by
`manage.py adt_send`; the patients are then where the messages put them, for the
departments the stays name, and a merged record's IPP leads to the surviving one."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live.servers import BASE_DIR, DEMO_PASSWORD, LiveCluster, free_port, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]

EXAMPLE = Path(BASE_DIR) / "interop" / "examples" / "demo-adt.hl7"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with live_cluster(1) as running:
        yield running


@pytest.fixture
def listener(cluster: LiveCluster) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "adt_listen", "--port", str(port)],
        cwd=BASE_DIR,
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"ADT listener on 127.0.0.1:{port}" in first, first
        yield port
    finally:
        process.terminate()
        process.wait(10)


def signed_in(cluster: LiveCluster, username: str) -> httpx.Client:
    http = httpx.Client(base_url=cluster.servers[0].url, timeout=10)
    answer = http.post("/api/auth/login", json={"username": username, "password": DEMO_PASSWORD})
    assert answer.status_code == 200, answer.text
    http.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return http


def found(http: httpx.Client, ipp: str) -> list[str]:
    return [p["ipp"] for p in http.post("/api/patients/search", json={"ipp": ipp}).json()]


def test_the_demo_takes_its_patients_over_mllp(cluster, listener):
    sent = cluster.manage("adt_send", str(EXAMPLE), "--port", str(listener))
    acks = [line.split("|")[:3] for line in sent.split("\n") if line.startswith("MSA|")]
    assert acks == [["MSA", "AA", f"DEMO-000{n}"] for n in range(1, 8)], sent

    carol = signed_in(cluster, "head_carol")  # Plastic surgery: Hélène came from the ER
    lea = signed_in(cluster, "er_doctor_lea")  # Emergency: Hélène left for Plastic surgery
    grace = signed_in(cluster, "head_grace")  # Vascular surgery: Bao was discharged
    assert found(carol, "00900101") == ["00900101"]
    assert found(lea, "00900101") == []
    assert found(grace, "00900102") == []
    # The merged record's IPP names the surviving one for the hospital's systems; in
    # Rounds, the merged record is not found among the staying patients.
    assert found(carol, "00900199") == []

    bao = next(
        iter(p for p in grace.post("/api/patients/search", json={"name": "NGUYEN"}).json()), None
    )
    assert bao is None
    # The discharged patient's department follows him up; another department needs a reason.
    ids = cluster.manage(
        "shell",
        "-c",
        "from patients.models import Patient; print(Patient.objects.get(ipp='00900102').pk)",
    )
    patient = int(ids.strip().split()[-1])
    departments = {d["name"]: d["id"] for d in grace.get("/api/departments").json()}
    body = {"department": departments["Vascular surgery"], "patient": patient, "title": "Follow-up"}
    assert grace.post("/api/threads", json=body).status_code == 201
    plastic = {d["name"]: d["id"] for d in carol.get("/api/departments").json()}["Plastic surgery"]
    refused = carol.post("/api/threads", json={**body, "department": plastic})
    assert refused.status_code == 404
