/**
 * A URL as it may appear in a log line or an error message: without the user and password it
 * may carry (a broker URL) and without its query string (a signed download URL's signature is
 * as good as a password until it expires). Text that is no URL is not echoed back either.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = "";
    parsed.password = "";
    parsed.search = "";
    return parsed.toString();
  } catch {
    return "(invalid url)";
  }
}
