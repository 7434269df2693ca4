/**
 * Runs after tsup. Makes `require('express-guanaitong')` the router factory itself, with every
 * named export as a property (as `require('express')` is), and gives it matching types:
 *
 * - dist/index.cjs: tsup's CommonJS build exports an object ({ default, guanaitong, … }); one line
 *   at its end replaces `module.exports` by the factory carrying those exports.
 * - dist/index.d.cts: tsup's declarations (ESM syntax: named exports and `default`) move to
 *   dist/api.d.cts; the new index.d.cts is the `export =` form CommonJS types need: the factory
 *   merged with a namespace holding every export.
 *
 * The ESM build (dist/index.js, index.d.ts) is left as tsup wrote it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'

/** The export that `require()` returns. */
const FACTORY = 'guanaitong'
const dist = resolve(import.meta.dirname, '..', 'dist')

function patchRuntime(file: string): void {
  const code = readFileSync(file, 'utf8')
  if (!code.includes(`module.exports = __toCommonJS(`)) throw new Error(`${file}: not tsup's CommonJS build`)
  const line = `// require('express-guanaitong') is the router factory, every export on it (scripts/cjs-entry.ts).\n` +
    `module.exports = Object.assign(module.exports.${FACTORY}, module.exports);\n`
  writeFileSync(file, code.endsWith('\n') ? code + line : `${code}\n${line}`)
}

/** Whether an alias, or any alias it points through, was exported with `export type`. */
function exportedAsType(checker: ts.TypeChecker, symbol: ts.Symbol): boolean {
  let at: ts.Symbol | undefined = symbol
  while (at && at.flags & ts.SymbolFlags.Alias) {
    if (at.declarations?.some(ts.isTypeOnlyImportOrExportDeclaration)) return true
    at = checker.getImmediateAliasedSymbol(at)
  }
  return false
}

/** Every export of the declaration file, and whether it can only be re-exported as a type. */
function exportsOf(file: string): Array<{ name: string; typeOnly: boolean; typeParameters: string[]; typeArguments: string[] }> {
  const program = ts.createProgram([file], { noEmit: true, skipLibCheck: true, module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16 })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(file)
  const moduleSymbol = source && checker.getSymbolAtLocation(source)
  if (!moduleSymbol) throw new Error(`${file}: not a module`)
  return checker.getExportsOfModule(moduleSymbol).map((symbol) => {
    const target = checker.getAliasedSymbol(symbol)
    const typeOnly = exportedAsType(checker, symbol) || !(target.flags & ts.SymbolFlags.Value)
    const declaration = target.declarations?.[0]
    // A generic type keeps its parameters (and their defaults): `type X<Tx = unknown> = api.X<Tx>`.
    const generic = typeOnly && declaration && (ts.isTypeAliasDeclaration(declaration) || ts.isInterfaceDeclaration(declaration) || ts.isClassDeclaration(declaration))
      ? declaration.typeParameters ?? []
      : []
    return {
      name: symbol.name,
      typeOnly,
      typeParameters: generic.map((parameter) => parameter.getText()),
      typeArguments: generic.map((parameter) => parameter.name.text),
    }
  })
}

/**
 * The imports of api.d.cts from other packages (`import { Request } from 'express'`), to repeat in
 * index.d.cts: a type parameter's default is copied as text (`Req = Request`), and without them
 * that name would silently be the global fetch `Request`. A package's name that is also one of our
 * exports would be shadowed inside the namespace, so it stops the build.
 */
function packageImports(apiFile: string, exported: ReadonlySet<string>): string[] {
  const source = ts.createSourceFile(apiFile, readFileSync(apiFile, 'utf8'), ts.ScriptTarget.Latest)
  return source.statements.filter(ts.isImportDeclaration).filter((statement) => {
    const from = (statement.moduleSpecifier as ts.StringLiteral).text
    if (from.startsWith('.')) return false
    const clause = statement.importClause
    const bindings = clause?.namedBindings
    const names = [
      ...(clause?.name ? [clause.name.text] : []),
      ...(bindings ? (ts.isNamedImports(bindings) ? bindings.elements.map((e) => e.name.text) : [bindings.name.text]) : []),
    ]
    const clash = names.find((name) => exported.has(name))
    if (clash) throw new Error(`${apiFile}: ${clash} is both imported from ${from} and exported`)
    return true
  }).map((statement) => statement.getText(source))
}

function writeTypes(apiFile: string, indexFile: string): void {
  const members = exportsOf(apiFile).filter((e) => e.name !== 'default')
  if (!members.some((e) => e.name === FACTORY)) throw new Error(`${apiFile} does not export ${FACTORY}`)
  const imports = packageImports(apiFile, new Set(members.map((e) => e.name)))
  const list = (items: string[]) => (items.length ? `<${items.join(', ')}>` : '')
  const lines = members.map(({ name, typeOnly, typeParameters, typeArguments }) =>
    // An import alias may not point at an `export type`; a type alias may.
    typeOnly ? `  export type ${name}${list(typeParameters)} = api.${name}${list(typeArguments)}` : `  export import ${name} = api.${name}`)
  writeFileSync(indexFile, `// CommonJS types: require('express-guanaitong') is the router factory, every export on it.
// Written by scripts/cjs-entry.ts from api.d.cts (tsup's declarations).
import * as api from './api.cjs'
${imports.join('\n')}

/**
 * The router a shop mounts: \`app.use('/gat', guanaitong({ appId, appSecret, notifyUrl, onPaid }))\`.
 * \`POST /notify\` takes Guanaitong's notifications; \`POST /pay\` starts a payment.
 */
declare function ${FACTORY}(...args: Parameters<typeof api.${FACTORY}>): ReturnType<typeof api.${FACTORY}>
declare namespace ${FACTORY} {
${lines.join('\n')}
}
export = ${FACTORY}
`)
}

patchRuntime(join(dist, 'index.cjs'))
renameSync(join(dist, 'index.d.cts'), join(dist, 'api.d.cts'))
writeTypes(join(dist, 'api.d.cts'), join(dist, 'index.d.cts'))
