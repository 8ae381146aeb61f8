// @ts-check
// The hash routes and the screen each mounts (docs/browser.md, "Layout"): a new screen
// adds its line here; the first pattern that matches wins.
import * as keys from "./views/keys.js";
import * as pin from "./views/pin.js";
import * as home from "./views/home.js";
import * as department from "./views/department.js";
import * as find from "./views/find.js";
import * as patient from "./views/patient.js";
import * as conversation from "./views/conversation.js";
import * as members from "./views/members.js";
import * as oncall from "./views/oncall.js";
import * as profile from "./views/profile.js";
import * as library from "./views/library.js";
import * as review from "./views/review.js";
import * as admin from "./views/admin.js";
import * as compliance from "./views/compliance.js";
import * as complianceCase from "./views/compliancecase.js";
import * as complianceThread from "./views/compliancethread.js";
import * as advice from "./views/advice.js";

/** @type {[RegExp, import("./app.js").View][]} */
export const ROUTES = [
  [/^#\/d\/(\d+)\/members$/, members],
  [/^#\/d\/(\d+)\/oncall$/, oncall],
  [/^#\/d\/(\d+)\/review(?:\?.*)?$/, review],
  [/^#\/library(?:\?.*)?$/, library],
  [/^#\/d\/(\d+)$/, department],
  [/^#\/t\/(\d+)$/, conversation],
  [/^#\/p\/(\d+)$/, patient],
  [/^#\/r\/(\d+)$/, advice],
  [/^#\/find$/, find],
  [/^#\/keys$/, keys],
  [/^#\/me$/, profile],
  [/^#\/pin$/, pin],
  [/^#\/admin$/, admin],
  [/^#\/compliance$/, compliance],
  [/^#\/compliance\/c\/(\d+)$/, complianceCase],
  [/^#\/compliance\/c\/(\d+)\/t\/(\d+)$/, complianceThread],
  [/^#?\/?$/, home],
];
