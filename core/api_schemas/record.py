"""Photos sent to the patient record (media/record_api.py, docs/interop-photos.md).

The server gives a device what it needs to describe a photo to the hospital's
FHIR server, and records the ids the FHIR server answered; the photo itself
goes from the device to the FHIR server, never through Rounds.
"""

from pydantic import Field

from core.api_schemas.common import Body, UserCard

# A FHIR logical id (FHIR R4 `id` datatype).
FHIR_ID = r"^[A-Za-z0-9\-.]{1,64}$"


class RecordPatient(Body):
    """Who the photo is of, as the hospital's record knows them (the IPP)."""

    ipp: str
    family_name: str
    given_name: str
    birth_date: str


class RecordKeyword(Body):
    """A keyword of the photo with its label, for the document's description."""

    code: str
    label: str


class RecordPerson(Body):
    """A user as the FHIR document names them: their Rounds username and display name."""

    username: str
    display_name: str


class PhotoExportOut(Body):
    """One sending of the photo to the record: where, the ids the FHIR server gave, who, when."""

    id: int
    attachment: int
    server: str
    document_reference: str
    binary: str
    by: UserCard
    at: str


class PhotoRecord(Body):
    """What a device needs to build the FHIR Bundle of one photo.

    `fhir_base_url` None: the feature is off and clients hide the action.
    `encounter`: the visit number of the patient's stay at the capture time, None when
    there is none (or it has no visit number). `author`: who took the photo (its
    sender); `authenticator`: the caller, who vouches for it by sending it.
    """

    attachment: int
    fhir_base_url: str | None
    ipp_system: str
    user_system: str
    patient: RecordPatient
    encounter: str | None
    captured_at: str
    consent: str
    keywords: list[RecordKeyword]
    author: RecordPerson
    authenticator: RecordPerson
    exports: list[PhotoExportOut]


class PhotoExportIn(Body):
    """The body of `POST …/record`: the FHIR server posted to and the ids it answered."""

    server: str = Field(min_length=1, max_length=500)
    document_reference: str = Field(pattern=FHIR_ID)
    binary: str = Field(pattern=FHIR_ID)
