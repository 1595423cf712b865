// Edit these for your site, or override them with the page's query string: ?api=…&key=…&tz=…
// A publishable key (fav_pub_…) is safe to publish: it only lists services and free times and asks for bookings,
// and only pages from the origins it allows may use it.
export const config = {
  apiBase: "http://127.0.0.1:8765",
  publishableKey: "fav_pub_your_key_here",
  // The business's time zone (IANA) to show before the first free times arrive, which carry it; or ?tz=…
  timeZone: "",
};
