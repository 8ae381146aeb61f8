// @ts-check
// A department's on-call roles and roster (docs/oncall.md, "The roster in the browser").
// Every member sees each active role with who is on duty now, and the next 7 days of
// the roster by day, its gaps and overlaps said in words. A head also creates, renames
// and archives roles, adds and removes shifts, and imports a rota file
// (views/rosterimport.js). Who is on duty is the server's answer on its own clock,
// never worked out here. Times are shown and typed on the hospital's clock: the zone
// the roster names, else this device's (a ward's devices keep the hospital's time).
import { del, get, post } from "../api.js";
import { formatDay, locale, t, tn } from "../i18n.js";
import { dateField, h, isoDay, toast } from "../ui.js";
import { importCard, showRefusal } from "./rosterimport.js";

/** @import { Coverage, Member, OnCallRole, OnCallRoles, Roster, RosterShift } from "../types/api.js" */

/** @param {{display_name?: string, username: string}} user */
const nameOf = (user) => user.display_name || user.username;

/**
 * An instant on a zone's wall clock: its day (YYYY-MM-DD), its time (HH:MM, 24 h) and
 * that wall time read as if it were UTC, in ms (to find the zone's offset).
 * @param {Date} at
 * @param {string} zone
 */
function wall(at, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  }).formatToParts(at).map((part) => [part.type, part.value]));
  const [y, m, d, hh, mm, ss] = [parts.year, parts.month, parts.day, parts.hour, parts.minute, parts.second].map(Number);
  return { day: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}`, asUtc: Date.UTC(y, m - 1, d, hh, mm, ss) };
}

/**
 * The instant a zone's clock shows `time` on `day` (twice corrected: the offset may
 * change between the first guess and the answer, at a change of clocks).
 * @param {string} day YYYY-MM-DD
 * @param {string} time HH:MM
 * @param {string} zone
 */
export function instant(day, time, zone) {
  const [y, m, d] = day.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const asUtc = Date.UTC(y, m - 1, d, hh, mm);
  let guess = asUtc;
  for (let i = 0; i < 2; i++) guess = asUtc - (wall(new Date(guess), zone).asUtc - guess);
  return new Date(guess);
}

/**
 * The hospital's clock for the screen: a period said as "08:00–20:00" on `day`, with
 * the date (dd/mm/yyyy) of an end or start on another day.
 * @param {string} zone
 */
export function clock(zone) {
  const on = (/** @type {string} */ iso, /** @type {string | null} */ day) => {
    const w = wall(new Date(iso), zone);
    return w.day === day ? w.time : `${formatDay(w.day)} ${w.time}`;
  };
  return {
    zone,
    /** @param {string} iso */
    day: (iso) => wall(new Date(iso), zone).day,
    /** Listed under no day, the start gives its date, and the end too if it is another. @param {string} start @param {string} end @param {string | null} [day] */
    span: (start, end, day = null) => `${on(start, day)}–${on(end, day ?? wall(new Date(start), zone).day)}`,
  };
}
/** @typedef {ReturnType<typeof clock>} Clock */

/**
 * A time typed on the 24-hour clock: "08:00", or "8", "0830", "8.30", "8h30" (a phone's
 * number pad has no colon), as HH:MM; null when it is not a time of day. A text field,
 * not the browser's time picker, which shows AM and PM where the browser's own
 * language does, whatever the language chosen in Rounds (as ui.js dateField for days).
 * @param {string} text
 */
export function parseTime(text) {
  const match = /^(\d{1,2})(?:[:.hH]?(\d{2}))?[hH]?$/.exec(text.trim());
  if (!match) return null;
  const [hours, minutes] = [Number(match[1]), Number(match[2] ?? 0)];
  if (hours > 23 || minutes > 59) return null;
  return `${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}`;
}

/** @param {Record<string, any>} attrs id, name, value (HH:MM) */
function timeField(attrs) {
  const input = h("input", { ...attrs, type: "text", inputmode: "numeric", autocomplete: "off", spellcheck: "false", placeholder: t("hh:mm"), maxlength: 5 });
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
  return input;
}

/** A timeField's time as HH:MM, or null (the field then says so to assistive technology). @param {HTMLInputElement} input */
function readTime(input) {
  const time = parseTime(input.value);
  if (time === null) input.setAttribute("aria-invalid", "true");
  return time;
}

/** A day's heading: "Monday 07/12/2026". @param {string} day YYYY-MM-DD */
function dayHeading(day) {
  const [y, m, d] = day.split("-").map(Number);
  const weekday = new Intl.DateTimeFormat(locale(), { weekday: "long", timeZone: "UTC" }).format(new Date(Date.UTC(y, m - 1, d)));
  return `${weekday[0].toUpperCase()}${weekday.slice(1)} ${formatDay(day)}`;
}

/**
 * A gap or an overlap, in words (a tag and a sentence, not a colour).
 * @param {Coverage} item
 * @param {Clock} time
 * @param {string | null} [day] the day it is listed under, if any
 */
export function coverageItem(item, time, day = null) {
  const when = time.span(item.starts_at, item.ends_at, day);
  const overlap = Boolean(item.users);
  return h("li", { class: "notice", dataset: { kind: overlap ? "overlap" : "gap", roleId: item.role.id } },
    h("span", { class: "tag" }, overlap ? t("Overlap") : t("Gap")), " ",
    overlap
      ? t("{when}: {people} at once as {role}.", { when, role: item.role.name, people: (item.users || []).map(nameOf).join(", ") })
      : t("{when}: nobody on duty as {role}.", { when, role: item.role.name }));
}

/**
 * Ask before a change that cannot be undone here; resolves true on `verb`.
 * @param {{title: string, lines: string[], verb: string, id: string}} what
 * @returns {Promise<boolean>}
 */
function ask({ title, lines, verb, id }) {
  return new Promise((resolve) => {
    const dialog = h("dialog", { "aria-label": title, id: `${id}-dialog` });
    const finish = (/** @type {boolean} */ value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    const cancel = h("button", { type: "button", onclick: () => finish(false) }, t("Cancel"));
    dialog.append(h("div", { class: "stack" }, h("h2", {}, title), lines.map((line) => h("p", {}, line)),
      h("div", { class: "row" }, cancel, h("button", { type: "button", class: "danger", id: `confirm-${id}`, onclick: () => finish(true) }, verb))));
    dialog.addEventListener("cancel", () => finish(false), { once: true });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * @param {import("../app.js").App} app
 * @param {number} departmentId
 */
export function render(app, departmentId) {
  const state = app.session;
  const base = `/api/departments/${departmentId}/oncall`;
  const department = state.departments.get(departmentId);
  const failure = (/** @type {string} */ id) => h("p", { class: "error", role: "alert", id });
  const loadError = failure("oncall-error");
  const rolesError = failure("roles-error");
  const rosterError = failure("roster-error");
  const onDuty = h("ul", { class: "list", id: "on-duty", "aria-labelledby": "on-duty-heading" });
  const archived = h("div", { id: "archived-roles" });
  const days = h("div", { class: "stack", id: "roster-days" });
  const headOnly = h("div", { class: "stack", id: "oncall-edit" });
  /** @type {OnCallRole[]} */
  let roles = [];
  let time = clock(Intl.DateTimeFormat().resolvedOptions().timeZone);

  /** @param {HTMLElement} el @param {() => Promise<string | false>} fn what was done, in words */
  const act = async (el, fn) => {
    showRefusal(el, null);
    try {
      const done = await fn();
      if (done) toast(done);
      await load();
    } catch (e) {
      showRefusal(el, e);
    }
  };

  /** @param {OnCallRole} role @param {HTMLLIElement} li */
  const renameForm = (role, li) => {
    const input = h("input", { id: `rename-${role.id}`, name: "name", value: role.name, maxlength: 120, autocomplete: "off", required: true });
    li.replaceChildren(h("form", {
      class: "stack",
      onsubmit: (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        act(rolesError, async () => {
          await post(`${base}/roles/${role.id}/rename`, { name: input.value });
          return t("Role renamed.");
        });
      },
    }, h("label", { for: input.id }, t("New name for {role}", { role: role.name })), input,
    h("div", { class: "row" }, h("button", { type: "button", onclick: () => load().catch((e) => showRefusal(rolesError, e)) }, t("Cancel")),
      h("button", { type: "submit", class: "primary" }, t("Save")))));
    input.focus();
  };

  /** @param {OnCallRole} role */
  const roleItem = (role) => {
    const head = state.isHead(departmentId);
    const who = role.on_duty.length ? role.on_duty.map(nameOf).join(", ") : t("Nobody on duty");
    const li = h("li", { class: "card stack", dataset: { role: role.name, roleId: role.id } }, h("div", {}, h("strong", {}, role.name),
      h("div", { class: role.on_duty.length ? "sub" : "sub error", dataset: { onDuty: role.on_duty.map((u) => u.username).join(" ") } },
        role.on_duty.length ? t("On duty: {names}", { names: who }) : who)),
    head ? h("div", { class: "row" },
      h("button", { type: "button", dataset: { rename: role.id }, onclick: () => renameForm(role, li) }, t("Rename")),
      h("button", {
        type: "button", class: "danger", dataset: { archive: role.id },
        onclick: () => act(rolesError, async () => {
          const sure = await ask({
            title: t("Archive {role}?", { role: role.name }), id: "archive-role", verb: t("Archive"),
            lines: [t("From now on nobody is on duty as {role} and it takes no new shift. Its shifts are kept for the record.", { role: role.name }),
              t("This cannot be undone; a new role may take its name.")],
          });
          if (!sure) return false;
          await post(`${base}/roles/${role.id}/archive`);
          return t("{role} is archived.", { role: role.name });
        }),
      }, t("Archive"))) : null);
    return li;
  };

  /** @param {RosterShift} shift @param {string} day */
  const shiftItem = (shift, day) => {
    const role = roles.find((r) => r.id === shift.role);
    const roleName = role ? (role.active ? role.name : t("{role} (archived)", { role: role.name })) : "";
    const when = time.span(shift.starts_at, shift.ends_at, day);
    return h("li", { class: "card", dataset: { shift: shift.id, user: shift.user.username } },
      h("strong", {}, when), h("div", {}, nameOf(shift.user)), h("div", { class: "sub" }, roleName, state.isHead(departmentId) ? [" · ", h("button", {
        type: "button", class: "link", "aria-label": t("Remove the shift of {name}, {when}", { name: nameOf(shift.user), when }),
        dataset: { removeShift: shift.id },
        onclick: () => act(rosterError, async () => {
          const sure = await ask({
            title: t("Remove this shift?"), id: "remove-shift", verb: t("Remove shift"),
            lines: [t("{name} · {role} · {when}", { name: nameOf(shift.user), role: roleName, when }),
              t("The roster and who is on duty no longer count it; the audit trail keeps it.")],
          });
          if (!sure) return false;
          await del(`${base}/shifts/${shift.id}`);
          return t("Shift removed.");
        }),
      }, t("Remove"))] : null));
  };

  /** @param {Roster} roster */
  const drawRoster = (roster) => {
    /** @type {Map<string, {at: number, el: HTMLElement}[]>} */
    const byDay = new Map();
    const from = Date.parse(roster.start);
    /** @param {string} iso @param {(day: string) => HTMLElement} make */
    const place = (iso, make) => {
      const at = Math.max(Date.parse(iso), from);
      const day = time.day(new Date(at).toISOString());
      if (!byDay.has(day)) byDay.set(day, []);
      byDay.get(day)?.push({ at, el: make(day) });
    };
    for (const shift of roster.shifts) place(shift.starts_at, (day) => shiftItem(shift, day));
    for (const item of [...roster.gaps, ...roster.overlaps]) place(item.starts_at, (day) => coverageItem(item, time, day));
    days.replaceChildren(...[...byDay.keys()].sort().map((day) => h("section", { class: "stack", dataset: { day } },
      h("h3", {}, dayHeading(day)),
      h("ul", { class: "list" }, (byDay.get(day) || []).sort((a, b) => a.at - b.at).map((item) => item.el)))));
    if (!byDay.size) days.append(h("p", { class: "muted" }, t("No shift in the next 7 days.")));
  };

  const load = async () => {
    /** @type {[OnCallRoles, Roster]} */
    const [listed, roster] = await Promise.all([get(`${base}/roles`), get(`${base}/roster`)]);
    showRefusal(loadError, null);
    if (roster.time_zone) time = clock(roster.time_zone);
    roles = listed.roles;
    const active = roles.filter((r) => r.active);
    onDuty.replaceChildren(...active.map(roleItem));
    if (!active.length) onDuty.append(h("li", { class: "muted" }, t("No on-call role yet.")));
    const old = roles.filter((r) => !r.active);
    archived.replaceChildren(old.length ? h("details", {},
      h("summary", {}, tn(old.length, "{count} archived role", "{count} archived roles")),
      h("ul", {}, old.map((r) => h("li", { dataset: { archivedRole: r.name } }, r.name)))) : "");
    drawRoster(roster);
    drawEdit();
    const named = state.departments.get(departmentId)?.name;
    if (named) app.retitle(el, title(named));
  };

  // --- A head's forms, drawn once the department's role is known ---------------------
  let editDrawn = false;
  /** @type {HTMLSelectElement | null} */
  let roleChoice = null;
  const drawEdit = () => {
    if (!state.isHead(departmentId)) return;
    if (!editDrawn) {
      editDrawn = true;
      roleChoice = h("select", { id: "shift-role", name: "role", required: true });
      headOnly.replaceChildren(newRoleForm(), shiftForm(roleChoice),
        importCard({ base, time: () => time, say: coverageItem, changed: () => load() }));
    }
    const chosen = roleChoice?.value;
    roleChoice?.replaceChildren(...roles.filter((r) => r.active).map((r) => h("option", { value: r.id, selected: String(r.id) === chosen }, r.name)));
  };

  const newRoleForm = () => {
    const input = h("input", { id: "new-role", name: "name", maxlength: 120, autocomplete: "off", required: true });
    const error = failure("new-role-error");
    return h("details", { class: "card", id: "new-role-box" }, h("summary", {}, t("New on-call role")), h("form", {
      class: "stack", id: "new-role-form",
      onsubmit: (/** @type {SubmitEvent} */ e) => {
        e.preventDefault();
        act(error, async () => {
          const role = await post(`${base}/roles`, { name: input.value });
          input.value = "";
          return t("{role} is created.", { role: role.name });
        });
      },
    }, h("label", { for: "new-role" }, t("Name of the role")), input, error,
    h("button", { type: "submit", class: "primary" }, t("Add role"))));
  };

  /** @param {HTMLSelectElement} role */
  const shiftForm = (role) => {
    const now = wall(new Date(), time.zone);
    const person = h("select", { id: "shift-person", name: "user", required: true });
    const error = failure("shift-error");
    state.departmentMembers(departmentId).then((/** @type {Member[]} */ members) => person.replaceChildren(
      ...members.map((m) => m.user).sort((a, b) => nameOf(a).localeCompare(nameOf(b), locale()))
        .map((u) => h("option", { value: u.id, dataset: { username: u.username } }, nameOf(u))))).catch((e) => showRefusal(error, e));
    const startDay = dateField({ id: "shift-start-day", name: "start_day", value: now.day, required: true });
    const startTime = timeField({ id: "shift-start-time", name: "start_time", value: "08:00", required: true });
    const endDay = dateField({ id: "shift-end-day", name: "end_day", value: now.day, required: true });
    const endTime = timeField({ id: "shift-end-time", name: "end_time", value: "20:00", required: true });
    // Checked here first, in words beside the form; the server checks it all again.
    const add = async () => {
      const [from, to, fromTime, toTime] = [isoDay(startDay), isoDay(endDay), readTime(startTime), readTime(endTime)];
      if (!from || !to || !fromTime || !toTime) throw new Error(t("Give the start and the end: days as dd/mm/yyyy, times as hh:mm (24-hour clock)."));
      const [starts, ends] = [instant(from, fromTime, time.zone), instant(to, toTime, time.zone)];
      if (ends <= starts) throw new Error(t("A shift ends after it starts."));
      await post(`${base}/shifts`, { role: Number(role.value), user: Number(person.value), starts_at: starts.toISOString(), ends_at: ends.toISOString() });
      return t("Shift added.");
    };
    return h("details", { class: "card", id: "add-shift-box" }, h("summary", {}, t("Add a shift")),
      h("form", {
        class: "stack", novalidate: true,
        onsubmit: (/** @type {SubmitEvent} */ e) => {
          e.preventDefault();
          act(error, add);
        },
      },
      h("div", {}, h("label", { for: "shift-role" }, t("Role")), role),
      h("div", {}, h("label", { for: "shift-person" }, t("Who")), person),
      h("div", { class: "row" }, h("div", {}, h("label", { for: "shift-start-day" }, t("Start date")), startDay),
        h("div", {}, h("label", { for: "shift-start-time" }, t("Start time")), startTime)),
      h("div", { class: "row" }, h("div", {}, h("label", { for: "shift-end-day" }, t("End date")), endDay),
        h("div", {}, h("label", { for: "shift-end-time" }, t("End time")), endTime)),
      error, h("button", { type: "submit", class: "primary" }, t("Add shift"))));
  };

  // The role here may be learnt after the screen opened (a page opened on this route); a
  // change by another head (oncall.changed, docs/protocol.md) is read again at once.
  const onChange = (/** @type {Event} */ event) => {
    const { what, frame } = /** @type {import("../state.js").ChangeEvent} */ (event).detail;
    const changed = what === "oncall.changed" && frame?.department === departmentId;
    if (what === "departments" || changed) load().catch((e) => showRefusal(loadError, e));
  };
  state.addEventListener("change", onChange);
  // Focus lands on the screen's first heading, as a screen reader user expects of a new page.
  const heading = h("h2", { id: "on-duty-heading", tabindex: "-1" }, t("On duty now"));
  const el = h("div", { class: "stack" }, loadError,
    h("section", { class: "stack" }, heading, rolesError, onDuty, archived),
    headOnly,
    h("section", { class: "stack" }, h("h2", {}, t("Next 7 days")), rosterError, days));
  const title = (/** @type {string} */ name) => t("{department} — on call", { department: name });
  load().catch((e) => showRefusal(loadError, e));
  return { el, title: title(department?.name ?? ""), back: true, focus: heading, unmount: () => state.removeEventListener("change", onChange) };
}
