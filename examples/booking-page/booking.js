// A booking page on favmcp's REST API with a publishable key: services, free times, and a booking request that
// the business confirms. No build step and no dependencies: a browser loads this module as it is.
import { config } from "./config.js";

const query = new URLSearchParams(location.search);
const apiBase = (query.get("api") || config.apiBase).replace(/\/+$/, "");
const key = query.get("key") || config.publishableKey;
// Dates are the business's (the slots of a date are its local day): times show on its clock, not the visitor's.
// Its zone comes with every slots answer; until the first one, the configured zone or the visitor's own.
let timeZone = query.get("tz") || config.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
const SLOT_PAGES = 5; // 100 slots a page: a whole day's starts for any staff size a small business has

const $ = (id) => document.getElementById(id);
const form = $("booking");
const state = { services: [], service: null, slot: null };

// A refusal as the page shows it: the problem's title and detail (RFC 9457), or what the browser could tell.
class Problem extends Error {
  constructor(title, detail, status = 0) {
    super(detail);
    this.title = title;
    this.detail = detail;
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    // A retried request (a flaky connection, a double click) books once: the server replays the first answer.
    headers["Idempotency-Key"] = randomKey();
  }
  let response;
  try {
    response = await fetch(apiBase + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // A CORS refusal and an unreachable server look the same from here: the browser hides which it was.
    throw new Problem(
      "The booking service could not be reached",
      `Your browser could not get an answer from ${apiBase}. Try again in a moment; if you run this page, check ` +
        `that its publishable key allows the origin ${location.origin}.`,
    );
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const title = data?.title || `The request failed (${response.status})`;
    const fields = (data?.field_errors || []).map((f) => `${f.field}: ${f.message}`).join("; ");
    const retry = response.headers.get("Retry-After");
    const detail =
      [data?.detail, fields, retry ? `Try again in ${retry} seconds.` : ""].filter(Boolean).join(" ") ||
      response.statusText;
    throw new Problem(title, detail, response.status);
  }
  return data;
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function showProblem(problem) {
  $("problem-title").textContent = problem.title || "Something went wrong";
  $("problem-detail").textContent = problem.detail || String(problem);
  $("problem").hidden = false;
}

function clearProblem() {
  $("problem").hidden = true;
}

function showZone(zone) {
  timeZone = zone || timeZone;
  $("zone").textContent = timeZone.replaceAll("_", " ");
}

function wallClock(iso) {
  const shape = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone };
  return new Date(iso).toLocaleTimeString(undefined, shape);
}

// The business's local date of an instant, as YYYY-MM-DD.
function localDate(iso) {
  return new Date(iso).toLocaleDateString("en-CA", { timeZone });
}

function longDate(isoDate) {
  const [y, m, d] = isoDate.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, {
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    timeZone: "UTC",
  });
}

function price(service) {
  try {
    const format = new Intl.NumberFormat(undefined, { style: "currency", currency: service.currency });
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(service.unit_amount / 10 ** digits);
  } catch {
    return `${service.unit_amount} ${service.currency}`;
  }
}

function today() {
  return localDate(new Date().toISOString());
}

function choice(name, value, parts, onPick) {
  const id = `${name}-${value}`.replace(/[^\w-]/g, "_");
  const wrapper = document.createElement("div");
  wrapper.className = "choice";
  const input = document.createElement("input");
  Object.assign(input, { type: "radio", name, value, id, required: true });
  input.addEventListener("change", onPick);
  const label = document.createElement("label");
  label.htmlFor = id;
  for (const [tag, text] of parts) {
    const part = document.createElement(tag);
    part.textContent = text;
    label.append(part);
  }
  wrapper.append(input, label);
  return wrapper;
}

async function loadBusiness() {
  try {
    const me = await api("GET", "/v1/whoami");
    if (me?.workspace_name) {
      $("business").textContent = me.workspace_name;
      $("business").hidden = false;
      document.title = `Book an appointment · ${me.workspace_name}`;
    }
  } catch {
    // The name is a nicety; the services below say whether the page works.
  }
}

async function loadServices() {
  const status = $("services-status");
  let answer;
  try {
    answer = await api("GET", "/v1/services?limit=100");
  } catch (problem) {
    status.textContent = "The services could not be loaded.";
    showProblem(problem);
    return;
  }
  state.services = answer.items.filter((s) => !s.is_class);
  const box = $("services");
  box.replaceChildren(
    ...state.services.map((s) =>
      choice(
        "service",
        s.id,
        [
          ["strong", s.name],
          ["span", `${s.duration_minutes} min · ${price(s)}`],
          ...(s.description ? [["small", s.description]] : []),
        ],
        () => pickService(s),
      ),
    ),
  );
  status.textContent = state.services.length ? "" : "No services can be booked online at the moment.";
}

function pickService(service) {
  clearProblem();
  state.service = service;
  $("time-step").disabled = false;
  if (!$("date").value) $("date").value = today();
  loadSlots();
}

async function loadSlots() {
  const date = $("date").value;
  const status = $("slots-status");
  const box = $("slots");
  state.slot = null;
  $("details-step").disabled = true;
  box.querySelectorAll(".choice").forEach((el) => el.remove());
  if (!state.service || !date) return;
  status.textContent = "Looking for free times…";
  const starts = new Map();
  try {
    let cursor = null;
    for (let page = 0; page < SLOT_PAGES; page++) {
      const params = new URLSearchParams({ from_date: date, to_date: date, limit: "100" });
      if (cursor) params.set("cursor", cursor);
      const answer = await api("GET", `/v1/services/${encodeURIComponent(state.service.id)}/slots?${params}`);
      showZone(answer.timezone);
      // Several staff may be free at one time; the visitor picks the time and the business a free person.
      for (const slot of answer.items) if (!starts.has(slot.starts_at)) starts.set(slot.starts_at, slot);
      cursor = answer.next_cursor;
      if (!cursor) break;
    }
  } catch (problem) {
    status.textContent = "The free times could not be loaded.";
    showProblem(problem);
    return;
  }
  if ($("date").value !== date) return; // the visitor moved on to another date meanwhile
  const slots = [...starts.values()];
  box.append(
    ...slots.map((slot) =>
      choice("slot", slot.starts_at, [["span", wallClock(slot.starts_at)]], () => {
        state.slot = slot;
        $("details-step").disabled = false;
      }),
    ),
  );
  status.textContent = slots.length
    ? `${slots.length} free ${slots.length === 1 ? "time" : "times"} on ${longDate(date)}.`
    : `No free times on ${longDate(date)}. Try another date.`;
}

async function submit(event) {
  event.preventDefault();
  clearProblem();
  const error = $("form-error");
  error.textContent = "";
  const name = $("name").value.trim();
  const email = $("email").value.trim();
  const invalid = [$("name"), $("email")].find((input) => !input.value.trim() || !input.checkValidity());
  for (const input of [$("name"), $("email")]) input.setAttribute("aria-invalid", String(input === invalid));
  if (!state.service || !state.slot) {
    error.textContent = "Pick a service and a time first.";
    return;
  }
  if (invalid) {
    error.textContent = invalid === $("name") ? "Please enter your name." : "Please enter a valid email address.";
    invalid.focus();
    return;
  }
  // The booking request has no phone field: the phone travels with the note, for the business to read.
  const phone = $("phone").value.trim();
  const note = [phone ? `Phone: ${phone}` : "", $("note").value.trim()].filter(Boolean).join("\n");
  const request = {
    service_id: state.service.id,
    starts_at: state.slot.starts_at,
    customer: { name, email, email_consent: $("consent").checked },
    ...(note ? { customer_note: note } : {}),
  };
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Sending…";
  try {
    const booking = await api("POST", "/v1/bookings", request);
    $("done-service").textContent = state.service.name;
    $("done-when").textContent = `${longDate(localDate(booking.starts_at))}, ${wallClock(booking.starts_at)}`;
    $("done-email").textContent = email;
    form.hidden = true;
    $("done").hidden = false;
    $("done-title").focus();
  } catch (problem) {
    showProblem(problem);
    $("problem").scrollIntoView({ block: "nearest" });
    // The time may have gone to someone else meanwhile: show what is still free.
    if (problem.status === 409) loadSlots();
  } finally {
    button.disabled = false;
    button.textContent = "Request this appointment";
  }
}

function again() {
  form.reset();
  state.service = null;
  state.slot = null;
  $("time-step").disabled = true;
  $("details-step").disabled = true;
  $("slots").querySelectorAll(".choice").forEach((el) => el.remove());
  $("slots-status").textContent = "Choose a service first.";
  $("done").hidden = true;
  form.hidden = false;
  form.querySelector("input")?.focus();
}

form.addEventListener("submit", submit);
$("date").addEventListener("change", loadSlots);
$("again").addEventListener("click", again);
$("date").min = today();
showZone();
form.hidden = false;
if (!key || key.includes("your_key_here")) {
  showProblem(
    new Problem(
      "This page has no key yet",
      "Put a publishable key (fav_pub_…) in config.js, or open the page with ?key=fav_pub_…",
    ),
  );
  $("services-status").textContent = "";
} else {
  loadBusiness();
  loadServices();
}
