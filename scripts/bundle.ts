// Writes every .js in dist (tsc writes the declarations, tsconfig.build.json). Nothing is minified,
// so that a stack trace and a reader of node_modules see the source's own names.
//
// Why bundle: Node loads an ES module file in about a millisecond on a small machine, and a tool
// importing the lock crossed some forty of them, as did `portlock run` refusing a held port: most
// of their start beyond that of a bare `node`. So the package holds:
//   dist/library.js       the whole library, once: all of src/ but src/cli, one file;
//   dist/index.js         the main entry, and dist/lock/index.js, `portlock/lock`: each only names
//                         what its source entry exports, from library.js;
//   dist/cli/bin.js       the command: turns on Node's compile cache, then loads dist/cli/main.js,
//                         the command line with every command, which takes the library from
//                         library.js.
// A refusal by `portlock run` loads those three files and the library's; V8 compiles a function
// only when it first runs, so the parts a run does not use (stop, clean, list, the agent) cost it
// little more than reading them.
//
// Nothing here lists an export: the entries come from package.json (`exports` and `bin`), what each
// exports from its source file, and what the command needs from the library from its imports.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import ts from 'typescript';

const SRC = resolve('src');
const CLI = join(SRC, 'cli');
const DIST = resolve('dist');
const LIBRARY = join(DIST, 'library.js');

interface Manifest {
  exports: Record<string, string | { default?: string }>;
  bin?: string | Record<string, string>;
}

const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as Manifest;

/** `./dist/lock/index.js` is built from `src/lock/index.ts`. */
function sourceOf(target: string): string {
  const source = resolve(target.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
  if (!existsSync(source)) throw new Error(`package.json names ${target}, but there is no ${source} to build it from`);
  return source;
}

function isJsInDist(target: string | undefined): target is string {
  return target?.startsWith('./dist/') === true && target.endsWith('.js');
}

const libraryEntries = [
  ...new Set(Object.values(manifest.exports).map((target) => (typeof target === 'string' ? target : target.default))),
].filter(isJsInDist);
const binEntries = [
  ...new Set(typeof manifest.bin === 'string' ? [manifest.bin] : Object.values(manifest.bin ?? {})),
].filter(isJsInDist);

const isLibraryModule = (path: string): boolean =>
  path.startsWith(`${SRC}/`) && !path.startsWith(`${CLI}/`) && path.endsWith('.ts');

/** The name the library gives, for the command alone, to `name` from the module at `path`. */
const internalName = (path: string, name: string): string =>
  `${relative(SRC, path)
    .replace(/\.ts$/, '')
    .replace(/[^A-Za-z0-9]/g, '_')}$${name}`;

/**
 * What the command imports from library modules: module path to the names it imports, read from
 * the import declarations of every file under src/cli (type-only imports aside).
 */
function commandNeeds(): Map<string, Set<string>> {
  const needs = new Map<string, Set<string>>();
  const files = readdirSync(CLI, { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
  for (const file of files.map((name) => join(CLI, name))) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    const visit = (node: ts.Node): void => {
      const specifier =
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier !== undefined &&
        ts.isStringLiteral(node.moduleSpecifier)
          ? node.moduleSpecifier.text
          : ts.isCallExpression(node) &&
              node.expression.kind === ts.SyntaxKind.ImportKeyword &&
              node.arguments[0] !== undefined &&
              ts.isStringLiteral(node.arguments[0])
            ? node.arguments[0].text
            : undefined;
      const path = specifier?.startsWith('.') ? resolve(dirname(file), specifier) : undefined;
      const typesOnly = ts.isExportDeclaration(node) && node.isTypeOnly;
      if (path !== undefined && isLibraryModule(path) && !typesOnly) {
        const where = `${relative('.', file)}: ${node.getText(source).split('\n')[0]}`;
        if (!ts.isImportDeclaration(node)) throw new Error(`${where}: import the library by name, statically`);
        const clause = node.importClause;
        if (clause?.isTypeOnly !== true) {
          const named = clause?.namedBindings;
          if (clause?.name !== undefined || (named !== undefined && !ts.isNamedImports(named))) {
            throw new Error(`${where}: import the library by name, not as a default or a namespace`);
          }
          for (const element of named?.elements ?? []) {
            if (element.isTypeOnly) continue;
            const names = needs.get(path) ?? new Set<string>();
            names.add((element.propertyName ?? element.name).text);
            needs.set(path, names);
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return needs;
}

/** The names an entry file exports, as esbuild sees them once it has bundled it. */
async function exportsOf(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'node',
    outdir: 'dist',
    logLevel: 'warning',
  });
  return Object.values(result.metafile.outputs).flatMap((output) => output.exports);
}

/**
 * Node builtins whose loading costs more than a millisecond and that only some calls need: bound
 * to functions that load them on the first call. Each name imported from them must be a function
 * (the build checks), since a class or a constant cannot wait for a call.
 */
const ON_FIRST_USE = new Set(['node:net', 'node:dns/promises', 'node:child_process', 'node:http']);

const BUILTIN_IMPORT = /^import (?:(\w+)|\* as (\w+)|\{([^}]*)\}) from "(node:[\w/]+)";$/gm;

/**
 * `import { readFileSync } from "node:fs"` becomes `const { readFileSync } = process.getBuiltinModule("node:fs")`.
 * An ES module import of a builtin makes Node build the builtin's whole module namespace, and for
 * node:fs that loads fs/promises and the stream classes, some milliseconds that a lock never
 * needs; process.getBuiltinModule (Node 20.16 and later) hands over the object Node already has.
 */
function builtinsWithoutNamespaces(code: string, file: string): string {
  const out = code.replace(BUILTIN_IMPORT, (_line, defaultName, namespaceName, named, builtin: string) => {
    const load = `process.getBuiltinModule(${JSON.stringify(builtin)})`;
    const whole = defaultName ?? namespaceName;
    if (whole !== undefined) {
      if (ON_FIRST_USE.has(builtin)) throw new Error(`${file}: import only functions from ${builtin}, by name`);
      return `const ${whole} = ${load};`;
    }
    const bindings = (named as string)
      .split(',')
      .map((part) => part.trim())
      .filter((part) => part !== '')
      .map((part) => {
        const [imported = '', local = imported] = part.split(/\s+as\s+/);
        return { imported, local };
      });
    if (!ON_FIRST_USE.has(builtin)) {
      const list = bindings.map(({ imported, local }) => (imported === local ? local : `${imported}: ${local}`));
      return `const { ${list.join(', ')} } = ${load};`;
    }
    const module = process.getBuiltinModule(builtin) as Record<string, unknown>;
    return bindings
      .map(({ imported, local }) => {
        const value = module[imported];
        if (typeof value !== 'function' || /^[A-Z]/.test(imported)) {
          throw new Error(`${file}: ${imported} from ${builtin} is not a plain function; it cannot load on first use`);
        }
        return `const ${local} = (...args) => ${load}.${imported}(...args);`;
      })
      .join('\n');
  });
  const left = /^import .*"node:.*$/m.exec(out);
  if (left !== null) throw new Error(`${file}: cannot rewrite \`${left[0]}\``);
  return out;
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, path.endsWith('.js') ? builtinsWithoutNamespaces(text, relative('.', path)) : text);
}

const common = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // The package has no runtime dependencies: an import of a package is a mistake to see, not to bundle.
  packages: 'external',
  legalComments: 'none',
  logLevel: 'warning',
  write: false,
} as const;

// The library: every public entry's exports under their own names, and what the command imports
// from library modules under names of their own (module path and name), which no public name can
// shadow.
const needs = commandNeeds();
const libraryEntry = [
  ...libraryEntries.map((target) => `export * from ${JSON.stringify(sourceOf(target))};`),
  ...[...needs].flatMap(([path, names]) =>
    [...names].map((name) => `export { ${name} as ${internalName(path, name)} } from ${JSON.stringify(path)};`),
  ),
].join('\n');
const library = await build({
  ...common,
  stdin: { contents: libraryEntry, resolveDir: SRC, sourcefile: 'library.ts', loader: 'ts' },
  outfile: LIBRARY,
  banner: {
    js: [
      "// portlock's library, once for the package: dist/index.js, dist/lock/index.js and the command",
      '// all import it. An export named like lock_inspect$listLocks is what src/cli imports from a',
      '// library module (there, src/lock/inspect.ts), named for that module so that no two collide.',
    ].join('\n'),
  },
});
for (const file of library.outputFiles) write(file.path, file.text);

// Each public entry names its exports from the library.
for (const target of libraryEntries) {
  const path = resolve(target);
  const from = posix.relative(dirname(path), LIBRARY);
  const names = (await exportsOf(sourceOf(target))).sort();
  const header = `// ${relative(SRC, sourceOf(target))}'s exports: the code is in ${from}, shared by every entry.`;
  write(path, `${header}\nexport { ${names.join(', ')} } from "${from.startsWith('.') ? from : `./${from}`}";\n`);
}

/** The command's imports of library modules become imports of dist/library.js. */
const libraryFromCommand: Plugin = {
  name: 'library-from-command',
  setup(plugin) {
    plugin.onResolve({ filter: /^\./ }, (args) => {
      const path = resolve(args.resolveDir, args.path);
      if (!args.importer.startsWith(`${CLI}/`) || !isLibraryModule(path)) return undefined;
      // Named relative to src/, as the bundle's comments show it.
      return { path: relative(SRC, path), namespace: 'library' };
    });
    plugin.onLoad({ filter: /.*/, namespace: 'library' }, (args) => {
      const path = join(SRC, args.path);
      const names = [...(needs.get(path) ?? [])].map((name) => `${internalName(path, name)} as ${name}`);
      // Every command file sits two levels below the package root (dist/cli, dist/chunks).
      return { contents: `export { ${names.join(', ')} } from "../library.js";`, loader: 'js' };
    });
    plugin.onResolve({ filter: /^\.\.\/library\.js$/, namespace: 'library' }, (args) => ({
      path: args.path,
      external: true,
    }));
  },
};

// The command: each bin file stays small, for it turns on Node's compile cache before anything
// else loads, and what it imports dynamically (the command line itself) is one bundle beside it,
// every command included: one file of a few more kilobytes loads faster than a file per command.
const binSources = binEntries.map(sourceOf);
const afterCompileCache = new Set<string>();
const splitAtDynamicImports: Plugin = {
  name: 'split-at-dynamic-imports',
  setup(plugin) {
    plugin.onResolve({ filter: /^\./ }, (args) => {
      if (args.kind !== 'dynamic-import' || !binSources.includes(args.importer)) return undefined;
      const path = resolve(args.resolveDir, args.path);
      afterCompileCache.add(path);
      const from = posix.relative(dirname(args.importer), path).replace(/\.ts$/, '.js');
      return { path: from.startsWith('.') ? from : `./${from}`, external: true };
    });
  },
};
const bins = await build({
  ...common,
  entryPoints: binSources,
  outbase: 'src',
  outdir: 'dist',
  plugins: [splitAtDynamicImports, libraryFromCommand],
});
for (const file of bins.outputFiles) write(file.path, file.text);
const command = await build({
  ...common,
  entryPoints: [...afterCompileCache],
  outbase: 'src',
  outdir: 'dist',
  plugins: [libraryFromCommand],
});
for (const file of command.outputFiles) write(file.path, file.text);
