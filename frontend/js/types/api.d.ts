// What the server sends that app.js and the screens read, for the type check only
// (tsconfig.json; never served or loaded). The shapes are the protocol's: the socket's
// frames of core/protocol.py and the HTTP bodies of core/api_schemas/ (docs/protocol.md).
// `api.js` answers `any`, so a screen names the type of each answer it reads; a type here
// lists the fields a screen reads, which may be fewer than the server sends. The signed
// records (statements, key versions, envelopes) are parsed and checked by crypto/, whose
// typedefs stay there.

import type { Statement } from "../crypto.js";
import type { User } from "../e2e/index.js";

export type Role = "head" | "member";
export type Consent = "care" | "teaching" | "publication";

/** A user as the socket and most bodies name them (UserRef). */
export interface UserRef {
  id: number;
  username: string;
}

/** A user as lists of people show them (UserCard). */
export interface UserCard extends UserRef {
  display_name: string;
}

/** POST /api/auth/login. */
export interface LoginBody {
  token: string;
  expires_at: string;
  user: User;
  csrf_token: string;
}

/** A refused password's second step (401 second_factor_required / second_factor_setup_required). */
export interface SecondFactorStep {
  pending: string;
  methods: ("passkey" | "totp" | "backup_code")[];
  expires_at: string;
}

/** One of my departments: `hello`'s DepartmentState; GET /api/departments adds `unread`. */
export interface Department {
  id: number;
  name: string;
  slug: string;
  role: Role;
  event_seq: number;
  unread?: number;
}

/** GET /api/departments?all=1 as an administrator sees it (DepartmentWithHeads). */
export interface DepartmentWithHeads {
  id: number;
  name: string;
  slug: string;
  event_seq: number;
  heads: UserCard[];
}

/** The `hello` frame. */
export interface Hello {
  type: "hello";
  protocol_version: number;
  user: UserRef;
  departments: Department[];
  cursor: Record<string, number>;
  limits: Record<string, number>;
}

/** A thread (ThreadOut). */
export interface Thread {
  id: number;
  department: number;
  patient: number;
  title: string;
  created_by: number;
  created_at: string;
  closed_at: string | null;
  last_seq: number;
}

/** An envelope as the server relays it; crypto/envelope.js parses and verifies it. */
export interface Envelope {
  header: Record<string, string | number | boolean | null>;
  ciphertext: string;
}

/** A photo of a message as the server lists it (AttachmentOut). */
export interface Attachment {
  id: number;
  upload: string;
  thumbnail: string | null;
  keywords: string[];
  consent: Consent;
  captured_at: string;
  annotates: number | null;
}

/** A message (MessageOut: `message.new`, a history page, a library item's message). */
export interface Message {
  id: number;
  thread: number;
  seq: number;
  sender: UserRef;
  client_msg_id: string;
  envelope: Envelope | null;
  created_at: string;
  attachments: Attachment[];
  redacted: { at: string; by: number } | null;
  /** The latest correction (CorrectionOut); null when never corrected, and on a tombstone. */
  correction: Correction | null;
}

/** A message's correction (CorrectionOut): version 2 is the first one. */
export interface Correction {
  id: number;
  version: number;
  client_msg_id: string;
  envelope: Envelope | null;
  corrected_at: string;
}

/** The `message.correct` ack's result. */
export interface Corrected {
  message_id: number;
  thread: number;
  seq: number;
  correction_id: number;
  version: number;
  corrected_at: string;
  duplicate?: boolean;
}

/** The `history.fetch` ack's result (History). */
export interface History {
  thread: number;
  messages: Message[];
  has_more: boolean;
}

/** A member's latest read receipt (Receipt; the `receipt.read` ack adds `advanced`). */
export interface Receipt {
  thread: number;
  user: UserRef;
  up_to_seq: number;
  read_at: string;
}

/** The `receipts.fetch` ack's result for one message (MessageReaders). */
export interface MessageReaders {
  thread: number;
  seq: number;
  readers: { user: UserRef; read_at: string }[];
}

/** The `message.redact` ack's result (Redacted). */
export interface Redacted {
  message_id: number;
  thread: number;
  seq: number;
  redacted_at: string | null;
}

/** The `message.post` ack's result. */
export interface Posted {
  message_id: number;
  thread: number;
  seq: number;
  created_at: string;
  duplicate?: true;
}

/** A patient as a search lists them (Patient). */
export interface Patient {
  id: number;
  ipp: string;
  family_name: string;
  given_name: string;
  birth_date: string;
  sex: string;
  ward: string | null;
}

/** Until when a patient's record is kept, and by which rule (Retention). */
export interface Retention {
  until: string | null;
  rule: string;
  last_care: string | null;
}

/** A patient opened from a search or a thread (PatientRecord). */
export interface PatientRecord extends Patient {
  retention: Retention;
}

/** Who a patient is, for compliance and the library (PatientIdentity). */
export interface PatientIdentity {
  id: number;
  ipp: string;
  family_name: string;
  given_name: string;
  birth_date: string;
}

/** A department's member (Member). */
export interface Member {
  user: UserCard;
  role: Role;
  admitted_at: string;
}

/** A member's published key as GET /api/departments/{id}/keys lists it (KeyMember). */
export interface KeyMember {
  user: number;
  role: Role;
  identity: { x25519: string; ed25519: string } | null;
  fingerprint: string | null;
  attested: boolean;
}

/** Of GET /api/departments/{id}/keys, what the members screen reads (e2e/ reads the rest). */
export interface DepartmentKeys {
  department: number;
  members: KeyMember[];
}

/** A colleague as the directory shows them (Person): where they work, their key's fingerprint. */
export interface Person {
  id: number;
  display_name: string;
  departments: { id: number; name: string; role: Role }[];
  fingerprint: string | null;
}

/** POST /api/people/search (People): at most 20; `more`, others match too. */
export interface People {
  people: Person[];
  more: boolean;
}

/** GET /api/keys/identity/{user} (IdentityLookup). */
export interface IdentityLookup {
  user: number;
  fingerprint: string;
  public: { x25519: string; ed25519: string };
  published_at: string;
  replaced_at: string | null;
}

// --- photos --------------------------------------------------------------------------

/** An encrypted file of a photos body: its upload, key (base64) and hash. */
export interface BodyBlob {
  upload: string;
  key: string;
  sha256: string;
  size: number;
  media_type: string;
  width: number;
  height: number;
}

/**
 * A photo of a decrypted photos body (docs/media.md), as photos/photos.js parsePhotoBody
 * checked it; `attachment` is the server's id of it, once matched (readBody).
 */
export interface BodyPhoto extends BodyBlob {
  thumbnail: BodyBlob;
  captured_at: string | null;
  keywords: string[];
  consent: Consent;
  annotates: number | null;
  attachment?: number | null;
}

/** A decrypted photos body: the caption and the photos. */
export interface PhotoBody {
  type: "photos";
  text?: string;
  photos: BodyPhoto[];
}

/** A photo of the library (GET /api/library/photos: Photo). */
export interface LibraryItem {
  id: number;
  upload: string;
  thumbnail: string | null;
  captured_at: string;
  keywords: string[];
  consent: Consent;
  annotates: number | null;
  department: number;
  department_name: string;
  thread: number;
  patient: PatientIdentity;
  sender: UserCard;
  message: Message;
}

/** A page of the library (PhotoPage); `time_zone`: the institution's, every time shown in it. */
export interface PhotoPage {
  items: LibraryItem[];
  next_cursor: string | null;
  time_zone: string;
}

// --- compliance ----------------------------------------------------------------------

/** What a review case covers, combined with AND (CaseScope). */
export interface CaseScope {
  patient: number | null;
  department: number | null;
  user: number | null;
  date_from: string | null;
  date_to: string | null;
}

/** A review case (Case). */
export interface Case {
  id: number;
  reference: string;
  reason: string;
  scope: CaseScope;
  opened_by: UserRef;
  opened_at: string;
  four_eyes: boolean;
  awaits_approval: boolean;
  approved_by: UserRef | null;
  approved_at: string | null;
  closed_by: UserRef | null;
  closed_at: string | null;
}

/** A thread a case covers, with its patient's identity (CaseThread). */
export interface CaseThread extends Omit<Thread, "patient"> {
  patient: PatientIdentity;
}

/** GET /api/compliance/cases/{id}/threads (CaseThreads). */
export interface CaseThreads {
  case: number;
  threads: CaseThread[];
  truncated: boolean;
}

/** A redaction as a case releases it: on which right, and why (ExplainedRedaction). */
export interface ExplainedRedaction {
  at: string;
  by: number;
  reason: string;
  right: string | null;
}

/** A message of a case's timeline (TimelineMessage). */
export interface TimelineMessage extends Omit<Message, "redacted"> {
  redacted: ExplainedRedaction | { at: string; by: number } | null;
  /** Every correction, oldest first (`correction` is the latest). */
  corrections: Correction[];
}

/** A receipt of a case's timeline (TimelineReceipt). */
export interface TimelineReceipt {
  user: UserRef;
  up_to_seq: number;
  read_at: string;
}

/** A photo of a case's timeline, as the server indexed it (TimelineAttachment). */
export interface TimelineAttachment {
  id: number;
  message: number;
  position: number;
  upload: string;
  thumbnail: string | null;
  captured_at: string;
  consent: string;
  annotates: number | null;
  sender: number;
  patient: number;
  keywords: string[];
}

/** A membership of the department, as its records keep it (MembershipRecord). */
export interface MembershipRecord {
  user: UserRef;
  role: string;
  admitted_at: string;
  admitted_by: number | null;
  removed_at: string | null;
  removed_by: number | null;
}

/** A statement of a department's chain as stored; crypto/statements.js parses `signed`. */
export interface StoredStatement {
  id: number;
  seq: number;
  signed: { statement: Statement; sig: string };
  created_at: string;
}

/**
 * Of a timeline's `department` (DepartmentRecord), what the screen reads; the chain and
 * key versions are verified by compliance/reader.js.
 */
export interface DepartmentRecord {
  id: number;
  memberships: MembershipRecord[];
  chain: { department: number; statements: StoredStatement[] };
  compliance: { fingerprint: string; public: { x25519: string; ed25519: string } } | null;
}

/** A page of a thread's timeline under a case (Timeline). */
export interface Timeline {
  case: number;
  thread: CaseThread;
  messages: TimelineMessage[];
  has_more: boolean;
  receipts: TimelineReceipt[];
  attachments: TimelineAttachment[];
  department: DepartmentRecord;
}

/**
 * Anything a screen catches and reads: an api.js ApiError, an E2EError, a CryptoError or a
 * socket's refusal (each carries a `code`), or a DOMException (`name`).
 */
export interface Refusal {
  name?: string;
  code?: string;
  status?: number;
  message: string;
  data?: { retry_after_seconds?: number; message_id?: number };
  retryAfter?: number | null;
}

/** An on-call role (OnCallRole): `on_duty`, who holds it now (nobody in a gap or once archived). */
export interface OnCallRole {
  id: number;
  department: number;
  name: string;
  active: boolean;
  created_at: string;
  archived_at: string | null;
  on_duty: UserCard[];
}

/** GET /api/departments/{id}/oncall/roles (OnCallRoles): active roles first, each as of `at`. */
export interface OnCallRoles {
  department: number;
  at: string;
  roles: OnCallRole[];
}

/** One person holding one role over [starts_at, ends_at) (Shift). */
export interface RosterShift {
  id: number;
  role: number;
  user: UserCard;
  starts_at: string;
  ends_at: string;
  removed_at: string | null;
}

/** A period in which a role has nobody (Gap), or several people (Overlap, with `users`). */
export interface Coverage {
  role: { id: number; name: string };
  starts_at: string;
  ends_at: string;
  users?: UserCard[];
}

/** GET /api/departments/{id}/oncall/roster (Roster); `time_zone` if the server names its zone. */
export interface Roster {
  department: number;
  start: string;
  end: string;
  shifts: RosterShift[];
  gaps: Coverage[];
  overlaps: Coverage[];
  time_zone?: string;
}

/** One row of a roster file, as an import reads it (ImportRow). */
export interface ImportRow {
  line: number;
  status: "accepted" | "unchanged" | "refused";
  reason: string | null;
  role: string;
  person: string;
  user: UserCard | null;
  starts_at: string | null;
  ends_at: string | null;
}

/** POST …/oncall/import/preview and …/oncall/import (RosterImport). */
export interface RosterImport {
  department: number;
  format: "csv" | "ics";
  committed: boolean;
  counts: { rows: number; accepted: number; unchanged: number; refused: number };
  rows: ImportRow[];
  start: string | null;
  end: string | null;
  gaps: Coverage[];
  overlaps: Coverage[];
}

export type Priority = "routine" | "urgent" | "emergency";

/** Whom an advice request is put to now (AdviceAddressee): a role or a person, the other null. */
export interface AdviceAddressee {
  role: { id: number; name: string } | null;
  user: UserCard | null;
}

/** One line of a request's timeline (AdviceStep); `actor` null for the server's scheduler. */
export interface AdviceStep {
  number: number;
  kind: "requested" | "escalated" | "realerted" | "passed" | "acknowledged" | "cancelled";
  at: string;
  actor: UserCard | null;
  holder: UserCard | null;
  data: {
    to?: { role?: number; user?: number };
    why?: "on_duty" | "next_shift" | "addressee" | "head" | "nobody";
    from?: number | null;
    due_at?: string;
    answer?: "on_it" | "call_me";
  };
}

/** An advice request (AdviceRequest, docs/advice.md); its question is the thread message `message`. */
export interface AdviceRequest {
  id: number;
  department: number;
  thread: number;
  patient: number;
  /** The question's message; null for a consult's request (its question is posted once the consult opens). */
  message: number | null;
  requester: UserCard;
  priority: Priority;
  to: AdviceAddressee;
  holder: UserCard | null;
  status: "open" | "acknowledged" | "cancelled";
  answer: "on_it" | "call_me" | null;
  answered_by: UserCard | null;
  answered_at: string | null;
  due_at: string | null;
  created_at: string;
  steps: number;
  last_step: AdviceStep | null;
}

/** GET /api/advice/{id} (AdviceDetail): the request with its whole timeline, first step first. */
export interface AdviceDetail extends AdviceRequest {
  timeline: AdviceStep[];
}

/** GET /api/advice (AdviceList): mine, or a department's with ?department=. */
export interface AdviceList {
  requests: AdviceRequest[];
  more: boolean;
}

/** The socket's department event `advice.updated` (AdviceUpdated). */
export interface AdviceUpdated {
  type: "advice.updated";
  department: number;
  event_seq: number;
  request: AdviceRequest;
}
