/**
 * The command line's shared pieces: a thin layer over node:util parseArgs that turns its errors
 * into usage errors (exit 2), builds each command's --help from the same table, and the output
 * streams a command writes to.
 */
import { parseArgs } from 'node:util'
import { didYouMean } from '../kernel/validate'
import { errorMessage, errorProperty, GuanaitongError } from '../kernel/errors'

export const TOOL = 'express-guanaitong'

/** Exit codes shared by the commands. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, UNREACHABLE: 3 } as const

/** Where a command writes, and the environment it reads (GAT_APPID, GAT_APPSECRET). */
export interface Io {
  out: (line: string) => void
  err: (line: string) => void
  env: Readonly<Record<string, string | undefined>>
}

export const processIo: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
}

/** Bad arguments: printed (without the package prefix) with a pointer to --help, exit 2. */
export class UsageError extends GuanaitongError {
  constructor(message: string) {
    super(message, 'USAGE')
    this.name = 'UsageError'
  }
}

export interface FlagSpec {
  type: 'string' | 'boolean'
  /** Placeholder shown in the help, e.g. `<url>`. */
  value?: string
  description: string
  /** Environment variable used when the flag is not given. */
  env?: string
}

export interface CommandSpec {
  name: string
  summary: string
  usage: string
  flags: Record<string, FlagSpec>
  /** What positional arguments mean; none allowed when absent. */
  positionals?: string
  /** Further lines of help (notes, exit codes). */
  notes?: string[]
  examples: string[]
}

export interface Parsed {
  values: Record<string, string | boolean | undefined>
  positionals: string[]
  help: boolean
}

/** Parses `argv` for `spec` strictly; unknown flags, missing values and stray arguments throw UsageError. */
export function parseCommand(spec: CommandSpec, argv: readonly string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } }
  for (const [name, flag] of Object.entries(spec.flags)) options[name] = { type: flag.type }
  let result: ReturnType<typeof parseArgs>
  try {
    result = parseArgs({ args: [...argv], options, strict: true, allowPositionals: spec.positionals !== undefined })
  } catch (error) {
    const code = errorProperty(error, 'code')
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      // Node's messages name the flag, never the value of another one (so no secret leaks here).
      const first = errorMessage(error).split('\n')[0].replace(/\. To specify a positional argument.*$/, '')
      if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
        throw new UsageError(`${spec.name} takes no positional arguments; got ${first.replace(/^Unexpected argument '(.*)'\..*$/s, "'$1'")}`)
      }
      const unknown = code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /^Unknown option '--?([^']*)'/.exec(first)?.[1] : undefined
      throw new UsageError(unknown === undefined ? first : `${first}${didYouMean(unknown, Object.keys(options), (flag) => `"--${flag}"`)}`)
    }
    throw error
  }
  const values = result.values as Record<string, string | boolean | undefined>
  if (!values.help) {
    for (const [name, flag] of Object.entries(spec.flags)) {
      if (flag.type === 'string' && values[name] === '') throw new UsageError(`--${name} needs a non-empty value`)
    }
  }
  return { values, positionals: result.positionals, help: values.help === true }
}

/** A string flag, falling back to its environment variable. */
export function stringFlag(spec: CommandSpec, parsed: Parsed, name: string, io: Io): string | undefined {
  const given = parsed.values[name]
  if (typeof given === 'string') return given
  const env = spec.flags[name]?.env
  const fromEnv = env ? io.env[env] : undefined
  return fromEnv === '' ? undefined : fromEnv
}

export function requireFlag(spec: CommandSpec, parsed: Parsed, name: string, io: Io): string {
  const value = stringFlag(spec, parsed, name, io)
  if (value === undefined) {
    const env = spec.flags[name]?.env
    throw new UsageError(`--${name} is required${env ? ` (or set ${env})` : ''}`)
  }
  return value
}

/** A whole number flag within [min, max]. */
export function intFlag(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback
  if (!/^[0-9]+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}; got ${JSON.stringify(raw)}`)
  }
  return Number(raw)
}

/** One of a fixed list of words. */
export function choiceFlag<T extends string>(name: string, raw: string | undefined, choices: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback
  if (!choices.includes(raw as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}; got ${JSON.stringify(raw)}`)
  return raw as T
}

/** Secrets are checked without ever being echoed. */
export function checkSecret(secret: string): void {
  if (secret.trim() !== secret) throw new UsageError('--app-secret has whitespace at its start or end (a pasted newline?): trim it')
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = `  --${name}${flag.value ? ` ${flag.value}` : ''}`
    return [left, `${flag.description}${flag.env ? ` (env ${flag.env})` : ''}`] as const
  })
  rows.push(['  -h, --help', 'show this help'])
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  const lines = [
    `${TOOL} ${spec.name}: ${spec.summary}`,
    '',
    `Usage: ${TOOL} ${spec.usage}`,
  ]
  if (spec.positionals) lines.push('', spec.positionals)
  lines.push('', 'Options:', ...rows.map(([left, right]) => `${left.padEnd(width)}${right}`))
  if (spec.notes?.length) lines.push('', ...spec.notes)
  lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`))
  return lines.join('\n')
}

/** `HH:MM:SS.mmm` local time, for event logs. */
export function clock(date = new Date()): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** A body for display: JSON-quoted, cut at `max` characters. */
export function quote(text: string, max = 200): string {
  return text.length > max ? `${JSON.stringify(text.slice(0, max))}… (${text.length} chars)` : JSON.stringify(text)
}
