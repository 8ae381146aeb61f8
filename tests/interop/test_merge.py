"""A merge moves everything of the merged record to the surviving one, in one transaction
(interop/merge.py): threads, photos (which the library then shows under the survivor),
stays, review cases; the merged record points to the survivor; nothing else moves."""

import pytest
from django.db import transaction

from chat.models import Thread
from interop.merge import do_merge
from media.models import Attachment
from patients.identity import IdentityRefused, PatientFacts, Source, do_record_patient, find_patient
from patients.models import Admission, Patient
from tests.support.uploads import attach, complete_upload

pytestmark = pytest.mark.django_db

ADT = Source("adt", "merge-test")


@pytest.fixture
def survivor(hospital) -> Patient:
    twin = hospital.patient
    return do_record_patient(
        PatientFacts("00888001", twin.family_name, twin.given_name, twin.birth_date), ADT
    )


def test_threads_photos_and_stays_follow_the_merge(hospital, survivor):
    merged = hospital.patient
    upload = complete_upload(hospital.surgeon_bob, hospital.plastic)
    attach(hospital, str(upload.pk))
    before = {
        "threads": Thread.objects.filter(patient=merged).count(),
        "photos": Attachment.objects.filter(patient=merged).count(),
    }
    assert before == {"threads": 1, "photos": 1}
    with transaction.atomic():
        moved = do_merge(survivor, merged, ADT)
    assert (moved["threads"], moved["photos"], moved["stays"]) == (1, 1, 1)
    assert not Thread.objects.filter(patient=merged).exists()
    assert Attachment.objects.filter(patient=survivor).count() == 1
    assert Admission.objects.filter(patient=survivor).count() == 1
    # The other patient's thread and photos stay where they were.
    assert Thread.objects.filter(patient=hospital.other_patient).count() == 1
    # The merged IPP now leads to the survivor.
    assert find_patient(merged.ipp) == survivor


def test_a_record_merged_once_cannot_be_merged_elsewhere(hospital, survivor):
    with transaction.atomic():
        do_merge(survivor, hospital.patient, ADT)
    with pytest.raises(IdentityRefused):
        do_merge(hospital.other_patient, hospital.patient, ADT)
    with pytest.raises(IdentityRefused):
        do_merge(survivor, survivor, ADT)
    # An update naming the merged IPP is refused: the record lives on as the survivor.
    with pytest.raises(IdentityRefused):
        do_record_patient(
            PatientFacts(hospital.patient.ipp, "X", "Y", hospital.patient.birth_date), ADT
        )
