/**
 * Text from a request (a key, an appid, a bad escape, a content type) on its way into a log
 * message. Unescaped, a body could end the line and write one of its own ("…\n[express-guanaitong]
 * payment X processed"), or move the terminal's cursor. Every request-derived string goes through
 * here before it is put in a message.
 */

/** Characters that could break a log line or mislead its reader: C0/C1 controls, DEL, line and bidi controls, lone surrogates. */
const CONTROL = '[\\u0000-\\u001f\\u007f-\\u009f\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]|[\\ud800-\\udbff](?![\\udc00-\\udfff])|(?<![\\ud800-\\udbff])[\\udc00-\\udfff]'
/** Those, and `"` and `\`, which a value quoted in a message must not be able to end or fake. */
const UNSAFE = new RegExp(`${CONTROL}|["\\\\]`, 'g')
const CONTROLS = new RegExp(CONTROL, 'g')
const HAS_CONTROL = new RegExp(CONTROL)

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '"': '\\"', '\\': '\\\\' }

function escape(c: string): string {
  return SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`
}

/**
 * `text` safe to put in a log message: control and line-breaking characters, `"` and `\` escaped
 * the way JSON writes them, cut after `max` characters (marked with `…`).
 */
export function printable(text: unknown, max = 80): string {
  const value = typeof text === 'string' ? text : String(text)
  const cut = value.length > max ? `${value.slice(0, max)}…` : value
  return cut.replace(UNSAFE, escape)
}

/**
 * A whole log message with its control characters escaped as `printable` escapes them (quotes and
 * backslashes kept, no cut): the last line of defence every message the package logs goes through
 * (src/observe/log.ts), whatever value from a request or an answer it carries.
 */
export function withoutControls(message: string): string {
  return HAS_CONTROL.test(message) ? message.replace(CONTROLS, escape) : message
}
