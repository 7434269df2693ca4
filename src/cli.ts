#!/usr/bin/env node
/**
 * The `express-guanaitong` command line: `sandbox`, `notify`, `sign`, `unsettled`. Each command lives in
 * src/cli/; this file picks one, prints usage errors (exit 2) and sets the exit code.
 */
import { version } from '../package.json'
import { causeMessage, errorMessage } from './kernel/errors'
import { EXIT, processIo, TOOL, UsageError, type Io } from './cli/args'
import { notifySpec, runNotify } from './cli/notify'
import { runSandbox, sandboxSpec } from './cli/sandbox'
import { runSign, signSpec } from './cli/sign'
import { runUnsettled, unsettledSpec } from './cli/unsettled'

const COMMANDS = {
  sandbox: { spec: sandboxSpec, run: runSandbox },
  notify: { spec: notifySpec, run: runNotify },
  sign: { spec: signSpec, run: runSign },
  unsettled: { spec: unsettledSpec, run: runUnsettled },
} as const

type CommandName = keyof typeof COMMANDS

function isCommand(name: string | undefined): name is CommandName {
  return name !== undefined && Object.prototype.hasOwnProperty.call(COMMANDS, name)
}

function toolHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length)) + 2
  return [
    `${TOOL} ${version}: try Guanaitong (关爱通) employee payments as a shop developer`,
    '',
    `Usage: ${TOOL} <command> [options]`,
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.spec.summary}`),
    '',
    'Options:',
    '  -h, --help     show this help (or a command\'s: <command> --help)',
    '  -v, --version  print the version',
    '',
    'The app secret is never printed; --app-secret may also come from GAT_APPSECRET (sandbox, notify, sign).',
    `Run "${TOOL} <command> --help" for a command's options and examples.`,
  ].join('\n')
}

/** Runs the tool with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    if (first === 'help' && rest[0] !== undefined) return main([rest[0], '--help'], io)
    if (first === undefined) {
      io.err(toolHelp())
      return EXIT.USAGE
    }
    io.out(toolHelp())
    return EXIT.OK
  }
  if (first === '--version' || first === '-v') {
    io.out(version)
    return EXIT.OK
  }
  if (!isCommand(first)) {
    io.err(`error: ${first.startsWith('-') ? `unknown option ${JSON.stringify(first)}` : `unknown command ${JSON.stringify(first)}`}`)
    io.err(`Commands: ${Object.keys(COMMANDS).join(', ')}. Run "${TOOL} --help".`)
    return EXIT.USAGE
  }
  try {
    return await COMMANDS[first].run(rest, io)
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${causeMessage(error)}`)
      io.err(`Run "${TOOL} ${first} --help" for usage.`)
      return EXIT.USAGE
    }
    throw error
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
    // Leave even if a stray socket or timer would keep the process alive.
    setTimeout(() => process.exit(code), 1000).unref()
  },
  (error: unknown) => {
    process.stderr.write(`error: ${errorMessage(error)}\n`)
    process.exitCode = EXIT.FAILED
  },
)
