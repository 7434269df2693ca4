/**
 * Type-checks consumer files in this process with the TypeScript API, the way a user's `tsc`
 * would: lib files are skipped (`skipLibCheck`), except the package under test, whose
 * declaration files are checked explicitly. Parsed files are shared between calls, so checking
 * many small consumers costs little more than one.
 */
import { resolve, sep } from 'node:path'
import ts from 'typescript'

const parsed = new Map<string, ts.SourceFile>()

function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options, true)
  const read = host.getSourceFile.bind(host)
  host.getSourceFile = (fileName, languageVersionOrOptions, onError, shouldCreate) => {
    const settings = typeof languageVersionOrOptions === 'object' ? languageVersionOrOptions : { languageVersion: languageVersionOrOptions }
    // Only files that cannot change during a run are shared: libraries, not the consumer files.
    if (!fileName.includes(`${sep}node_modules${sep}`) && !fileName.includes('/node_modules/')) return read(fileName, languageVersionOrOptions, onError, shouldCreate)
    const key = `${fileName}|${settings.languageVersion}|${settings.impliedNodeFormat ?? ''}`
    let file = parsed.get(key)
    if (!file) {
      file = read(fileName, languageVersionOrOptions, onError, shouldCreate)
      if (file) parsed.set(key, file)
    }
    return file
  }
  return host
}

/**
 * The diagnostics of `files` (absolute paths) under `compilerOptions` (JSON form, as in a
 * tsconfig.json), plus those of every declaration file under `checkedPackage`. Empty when it compiles.
 */
export function typecheck(files: string[], compilerOptions: Record<string, unknown>, checkedPackage: string): string[] {
  const converted = ts.convertCompilerOptionsFromJson({ ...compilerOptions, skipLibCheck: true, noEmit: true }, resolve(files[0], '..'))
  if (converted.errors.length) throw new Error(ts.flattenDiagnosticMessageText(converted.errors[0].messageText, '\n'))
  const options = converted.options
  const program = ts.createProgram({ rootNames: files, options, host: cachingHost(options) })
  const ours = program.getSourceFiles().filter((f) => resolve(f.fileName).startsWith(checkedPackage + sep))
  if (!ours.length) throw new Error(`no declaration file of ${checkedPackage} was used: the imports resolved elsewhere`)
  const diagnostics = [
    ...ts.getPreEmitDiagnostics(program),
    ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
  ]
  return diagnostics.map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n')
    if (!d.file || d.start === undefined) return `TS${d.code}: ${text}`
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start)
    return `${d.file.fileName}(${line + 1},${character + 1}): TS${d.code}: ${text}`
  })
}
