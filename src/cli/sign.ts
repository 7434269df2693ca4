/**
 * `express-guanaitong sign`: prints the canonical string (secret masked) and the signature of a
 * parameter set, to find out why a signature does not match.
 */
import { canonicalString, maskedCanonicalString, sign, SIGN_ALGORITHMS } from '../kernel/signature'
import type { SignAlgorithm } from '../kernel/types'
import { checkSecret, choiceFlag, EXIT, helpText, parseCommand, requireFlag, UsageError, type CommandSpec, type Io } from './args'

export const signSpec: CommandSpec = {
  name: 'sign',
  summary: 'print the canonical string (secret masked as ***) and the signature of some parameters',
  usage: 'sign --app-secret <secret> [--sign-type sha1] [--form <a=1&b=2>] [key=value ...]',
  positionals: [
    'Parameters are key=value pairs (raw values, as signed: no URL encoding), or a whole',
    'form body with --form (URL-decoded first, e.g. a notification body copied from a log).',
    'A sign=... among them is compared with the computed one (exit 1 when it differs).',
  ].join('\n'),
  flags: {
    'app-secret': { type: 'string', value: '<secret>', description: 'application secret; never printed', env: 'GAT_APPSECRET' },
    'sign-type': { type: 'string', value: '<sha1|sha256|sha512>', description: 'hash of your application (default sha1)' },
    form: { type: 'string', value: '<body>', description: 'an application/x-www-form-urlencoded body to sign' },
  },
  notes: [
    'Blank values are left out of the signed string, as Guanaitong does; they are listed.',
    'Exit codes: 0 printed (and a given sign matched), 1 a given sign did not match, 2 bad arguments.',
  ],
  examples: [
    `express-guanaitong sign --app-secret secret123 appid=20110698 outer_trade_no=1000000005 \\
      total_amount=100.00 buyer_open_id=d87797eea12a2f80ad72ed93214a0908 \\
      trade_no=2018070920000005 timestamp=1531120153`,
    `express-guanaitong sign --form 'appid=20110698&outer_trade_no=1000000005&sign=...'   # secret from GAT_APPSECRET`,
  ],
}

function addParam(params: Record<string, string>, key: string, value: string, where: string): void {
  if (key === '') throw new UsageError(`${where}: a parameter needs a name before "="`)
  if (Object.prototype.hasOwnProperty.call(params, key)) throw new UsageError(`${where}: parameter "${key}" is given twice`)
  params[key] = value
}

function collect(positionals: readonly string[], form: string | undefined): Record<string, string> {
  const params: Record<string, string> = Object.create(null)
  if (form !== undefined) {
    for (const [key, value] of new URLSearchParams(form)) addParam(params, key, value, '--form')
  }
  for (const pair of positionals) {
    const eq = pair.indexOf('=')
    if (eq < 0) throw new UsageError(`parameters are key=value; got "${pair.length > 40 ? `${pair.slice(0, 40)}…` : pair}"`)
    addParam(params, pair.slice(0, eq), pair.slice(eq + 1), 'key=value')
  }
  if (Object.keys(params).length === 0) throw new UsageError('give the parameters to sign as key=value pairs or --form')
  return params
}

export async function runSign(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseCommand(signSpec, argv)
  if (parsed.help) {
    io.out(helpText(signSpec))
    return EXIT.OK
  }
  const secret = requireFlag(signSpec, parsed, 'app-secret', io)
  checkSecret(secret)
  const algorithm = choiceFlag<SignAlgorithm>('sign-type', parsed.values['sign-type'] as string | undefined, SIGN_ALGORITHMS, 'sha1')
  const params = collect(parsed.positionals, parsed.values.form as string | undefined)

  const given = params.sign
  const signed: Record<string, string> = { ...params }
  delete signed.sign
  if (signed.appsecret !== undefined) {
    io.err('note: an "appsecret" parameter is ignored: the secret comes from --app-secret')
    delete signed.appsecret
  }
  // A key is left out when signing it alone gives just the secret.
  const blank = Object.keys(signed).filter((key) => canonicalString({ [key]: signed[key] }, 'x') === 'appsecret=x')
  const signature = sign(signed, secret, algorithm)

  io.out('canonical string (secret masked):')
  io.out(maskedCanonicalString(signed))
  if (blank.length) io.out(`left out (blank): ${blank.join(', ')}`)
  io.out(`sign (${algorithm}): ${signature}`)
  if (given === undefined) return EXIT.OK
  if (given === signature) {
    io.out('given sign: matches')
    return EXIT.OK
  }
  io.out(`given sign: ${given}`)
  io.out('             does NOT match: check the secret, the sign type, and that values are signed raw (not URL-encoded)')
  return EXIT.FAILED
}
