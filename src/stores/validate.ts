import { ConfigError, ParamError } from '../errors'

/** An optional positive whole-number option, or its default; a ConfigError saying what to pass otherwise. */
export function positiveInteger(store: string, name: string, value: unknown, fallback: number, meaning: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(`${store}: ${name} must be a positive whole number (${meaning}); got ${describeValue(value)}. Omit it for the default ${fallback}.`)
  }
  return value
}

/** A notification key as every store takes it: a non-empty string. */
export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key === '') throw new ParamError('key', `must be a non-empty string; got ${describeValue(key)}`)
}

export function describeValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}
