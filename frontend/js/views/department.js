// A department's patient threads, newest first, with unread counts.
import { h, patientLabel, shortTime } from "../ui.js";

export function render(app, departmentId) {
  const department = app.state.departments.get(departmentId);
  const list = h("ul", { class: "list", "aria-label": "Conversations" });
  const draw = () => {
    const threads = [...app.state.threads.values()].filter((t) => t.department === departmentId).sort((a, b) => b.id - a.id);
    list.replaceChildren(...threads.map((t) => {
      const unread = app.state.unread(t.id);
      const who = h("span", { class: "sub" });
      app.state.patient(t.patient).then((p) => (who.textContent = `${patientLabel(p)} · IPP ${p.ipp}`)).catch(() => {});
      return h("li", {}, h("a", { href: `#/t/${t.id}` },
        h("span", { class: "grow" }, h("strong", {}, t.title), h("div", {}, who), h("div", { class: "sub" }, `${t.last_seq} message${t.last_seq === 1 ? "" : "s"} · opened ${shortTime(t.created_at)}`)),
        t.closed_at ? h("span", { class: "tag" }, "Closed") : null,
        unread ? h("span", { class: "badge", "aria-label": `${unread} unread` }, unread) : null));
    }));
    if (!threads.length) list.append(h("li", { class: "muted" }, "No conversation yet. Find a patient to start one."));
  };
  const onChange = (event) => ["threads", "thread", "message", "receipt", "departments"].includes(event.detail.what) && draw();
  app.state.addEventListener("change", onChange);
  app.state.loadDepartment(departmentId).then(draw).catch(() => {});
  draw();
  const actions = h("div", { class: "row" },
    h("a", { class: "button primary", href: "#/find" }, "Find a patient"),
    department?.role === "head" ? h("a", { class: "button", href: `#/d/${departmentId}/members` }, "Members") : null);
  // The weekly review is the head's routine; any member may see the department's photos.
  const photos = h("div", { class: "row" },
    h("a", { class: "button", href: `#/d/${departmentId}/review` }, "Weekly photo review"),
    h("a", { class: "button", href: `#/library?department=${departmentId}` }, "Photo library"));
  const el = h("div", { class: "stack" }, actions, list, photos);
  return { el, title: department?.name || "Department", back: true, unmount: () => app.state.removeEventListener("change", onChange) };
}
