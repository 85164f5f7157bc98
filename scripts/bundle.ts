// Writes every .js in dist (tsc writes the declarations, tsconfig.build.json). Nothing is minified,
// so that a stack trace and a reader of node_modules see the source's own names.
//
// Why bundle: Node loads an ES module file in about a millisecond on a small machine, and compiles
// a file in time that grows with its size. A tool importing the lock crossed some forty files, as
// did `portlock run` refusing a held port: most of their start beyond that of a bare `node`. Split
// at every module that two entries share (esbuild's code splitting), the package is some forty
// files again. So the code is built in layers, one bundle each, each module in exactly one of them
// (the package holds one copy of the library):
//   dist/chunks/lock.js      the lock: all that `portlock/lock` (src/lock/index.ts) reaches;
//   dist/chunks/library.js   what the main entry (src/index.ts) adds: the agent, acquirePort;
//   dist/lock/index.js, dist/index.js   each only names its entry's exports, from its layer:
//                            `portlock/lock` loads two files, and neither the agent nor node:http;
//   dist/chunks/<module>.js  each module that is imported dynamically, loaded on first use, with
//                            what it alone reaches: stopLock, cleanLocks..., the command line
//                            (cli-main.js) and each command (cli-commands-run.js);
//   dist/chunks/<dir>-shared.js   what two of those, and no layer below, reach;
//   dist/cli/bin.js          the command: turns on Node's compile cache, then loads cli-main.js,
//                            which loads the one command it runs.
// A layer exports, besides its entry's names, what the code of other layers imports from its
// modules, under names of their own (module path and name, lock_acquire$acquireLock), which no
// public name can shadow.
//
// Nothing here lists an export or a file: the entries come from package.json (`exports` and `bin`),
// the lazy layers from dynamic imports, each layer's modules from what its root reaches, and what a
// layer must export from the imports of the code in the others.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, posix, relative, resolve } from 'node:path';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import ts from 'typescript';

const SRC = resolve('src');
const DIST = resolve('dist');
const CHUNKS = join(DIST, 'chunks');

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

/** The name a layer gives, for the code of the other layers alone, to `name` from the module at `path`. */
const internalName = (path: string, name: string): string =>
  `${relative(SRC, path)
    .replace(/\.ts$/, '')
    .replace(/[^A-Za-z0-9]/g, '_')}$${name}`;

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
} as const satisfies BuildOptions;

/**
 * What a bundle of `entry` holds when its dynamic imports stay apart: the source files its static
 * imports reach, the modules it imports dynamically (each loaded on first use), and the names the
 * entry exports, as esbuild sees them.
 */
async function survey(entry: string): Promise<{ modules: Set<string>; lazy: string[]; exports: string[] }> {
  const lazy: string[] = [];
  const apart: Plugin = {
    name: 'dynamic-imports-apart',
    setup(plugin) {
      plugin.onResolve({ filter: /^\./ }, (args) => {
        if (args.kind !== 'dynamic-import') return undefined;
        lazy.push(resolve(args.resolveDir, args.path));
        return { path: args.path, external: true };
      });
    },
  };
  const result = await build({ ...common, entryPoints: [entry], outdir: DIST, metafile: true, plugins: [apart] });
  const modules = new Set(Object.keys(result.metafile.inputs).map((input) => resolve(input)));
  const exports = Object.values(result.metafile.outputs).flatMap((output) => output.exports);
  return { modules, lazy, exports };
}

const exportsCache = new Map<string, string[]>();
async function exportsOf(path: string): Promise<string[]> {
  const known = exportsCache.get(path);
  if (known !== undefined) return known;
  const { exports } = await survey(path);
  exportsCache.set(path, exports);
  return exports;
}

/**
 * What the files `importers` take from the modules `held`: module path to the names, read from
 * their import and export declarations and dynamic imports (type-only ones aside). A namespace
 * import, an `export *` and a dynamic import take every name the module exports.
 */
async function needsOf(importers: Iterable<string>, held: Set<string>): Promise<Map<string, Set<string>>> {
  const needs = new Map<string, Set<string>>();
  const add = (path: string, names: Iterable<string>) => {
    const set = needs.get(path) ?? new Set<string>();
    for (const name of names) set.add(name);
    needs.set(path, set);
  };
  const everything: string[] = [];
  for (const file of importers) {
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    const visit = (node: ts.Node): void => {
      const declaration = ts.isImportDeclaration(node) || ts.isExportDeclaration(node);
      const specifier =
        declaration && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)
          ? node.moduleSpecifier.text
          : ts.isCallExpression(node) &&
              node.expression.kind === ts.SyntaxKind.ImportKeyword &&
              node.arguments[0] !== undefined &&
              ts.isStringLiteral(node.arguments[0])
            ? node.arguments[0].text
            : undefined;
      const path = specifier?.startsWith('.') ? resolve(dirname(file), specifier) : undefined;
      if (path !== undefined && held.has(path)) {
        if (ts.isImportDeclaration(node)) {
          const clause = node.importClause;
          const named = clause?.namedBindings;
          if (clause?.isTypeOnly === true) {
            // Types only: nothing at run time.
          } else if (clause?.name !== undefined || (named !== undefined && !ts.isNamedImports(named))) {
            everything.push(path);
          } else {
            add(
              path,
              (named?.elements ?? []).flatMap((e) => (e.isTypeOnly ? [] : [(e.propertyName ?? e.name).text])),
            );
          }
        } else if (ts.isExportDeclaration(node)) {
          const clause = node.exportClause;
          if (node.isTypeOnly) {
            // Types only.
          } else if (clause === undefined || !ts.isNamedExports(clause)) {
            everything.push(path);
          } else {
            add(
              path,
              clause.elements.flatMap((e) => (e.isTypeOnly ? [] : [(e.propertyName ?? e.name).text])),
            );
          }
        } else {
          everything.push(path);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  for (const path of everything) add(path, await exportsOf(path));
  return needs;
}

/**
 * Node builtins whose loading costs more than a millisecond and that only some calls need: bound
 * to functions that load them on the first call. Each name imported from them must be a function
 * (the build checks), since a class or a constant cannot wait for a call.
 */
const ON_FIRST_USE = new Set(['node:net', 'node:dns/promises', 'node:child_process', 'node:http']);

/**
 * Node builtins that are cheap but not free to load (node:os, a few tenths of a millisecond each
 * on a small machine) and that a lock needs only in some calls: the functions imported from them
 * load them on the first call, as above; anything else imported from them (`constants`) loads them
 * at once. Importing `portlock/lock` then loads no builtin that Node has not loaded already.
 */
const FUNCTIONS_ON_FIRST_USE = new Set(['node:os', 'node:timers/promises']);

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
    const module = process.getBuiltinModule(builtin) as Record<string, unknown>;
    const isPlainFunction = (name: string) => typeof module[name] === 'function' && !/^[A-Z]/.test(name);
    const strict = ON_FIRST_USE.has(builtin);
    const deferred =
      strict || FUNCTIONS_ON_FIRST_USE.has(builtin) ? bindings.filter((b) => isPlainFunction(b.imported)) : [];
    const atOnce = bindings.filter((binding) => !deferred.includes(binding));
    if (strict && atOnce.length > 0) {
      const [{ imported }] = atOnce as [(typeof atOnce)[number]];
      throw new Error(`${file}: ${imported} from ${builtin} is not a plain function; it cannot load on first use`);
    }
    const list = atOnce.map(({ imported, local }) => (imported === local ? local : `${imported}: ${local}`));
    return [
      ...(list.length > 0 ? [`const { ${list.join(', ')} } = ${load};`] : []),
      ...deferred.map(({ imported, local }) => `const ${local} = (...args) => ${load}.${imported}(...args);`),
    ].join('\n');
  });
  const left = /^import .*"node:.*$/m.exec(out);
  if (left !== null) throw new Error(`${file}: cannot rewrite \`${left[0]}\``);
  return out;
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, path.endsWith('.js') ? builtinsWithoutNamespaces(text, relative('.', path)) : text);
}

interface Layer {
  /**
   * The module the layer is built from: a public entry's source, or a module loaded on first use;
   * none for the modules that two of those share.
   */
  root?: string;
  /** The bundle's path in dist. */
  file: string;
  /** The source files the bundle holds, and no other bundle. */
  modules: Set<string>;
  /** What the code of other layers imports from these modules: module path to names. */
  needs: Map<string, Set<string>>;
  /** For a public entry: its file in dist, which names its exports from this layer. */
  entry?: { target: string; exports: string[] };
}

/**
 * A static import of a module that another layer holds becomes an import of that layer's bundle,
 * under the layer's own names for it; a dynamic import of a layer's root, an import of that layer's
 * bundle. `outdir` is where the bundle being built is written.
 */
function fromLayers(layers: Layer[], outdir: string): Plugin {
  const layerOf = (path: string) => layers.find((layer) => layer.modules.has(path));
  const specifier = (file: string) => {
    const from = posix.relative(outdir, file);
    return from.startsWith('.') ? from : `./${from}`;
  };
  return {
    name: 'from-layers',
    setup(plugin) {
      plugin.onResolve({ filter: /^\./ }, (args) => {
        if (args.namespace === 'layer') return { path: args.path, external: true };
        const path = resolve(args.resolveDir, args.path);
        const layer = layerOf(path);
        if (layer === undefined) return undefined;
        if (args.kind === 'dynamic-import' && layer.root === path)
          return { path: specifier(layer.file), external: true };
        return { path, namespace: 'layer' };
      });
      plugin.onLoad({ filter: /.*/, namespace: 'layer' }, (args) => {
        const layer = layerOf(args.path) as Layer;
        const names = [...(layer.needs.get(args.path) ?? [])].map(
          (name) => `${internalName(args.path, name)} as ${name}`,
        );
        return {
          contents: `export { ${names.join(', ')} } from ${JSON.stringify(specifier(layer.file))};`,
          loader: 'js',
          resolveDir: SRC,
        };
      });
    },
  };
}

const isSource = (path: string) => path.startsWith(`${SRC}/`) && path.endsWith('.ts');
const assigned = (path: string) => layers.some((layer) => layer.modules.has(path));
const layers: Layer[] = [];
/** Adds the layer of `root`: what it reaches that no layer holds yet. Returns its lazy imports. */
function addLayer(
  root: string,
  file: string,
  surveyed: { modules: Set<string>; lazy: string[] },
  entry?: Layer['entry'],
) {
  const modules = new Set([...surveyed.modules].filter((path) => isSource(path) && !assigned(path)));
  layers.push({ root, file, modules, needs: new Map(), ...(entry && { entry }) });
  return surveyed.lazy;
}

// The public entries first, the smallest first: `portlock/lock` is all of the lock, and the main
// entry adds the rest of the library to it.
const entries = await Promise.all(
  libraryEntries.map(async (target) => ({ target, root: sourceOf(target), surveyed: await survey(sourceOf(target)) })),
);
entries.sort((a, b) => a.surveyed.modules.size - b.surveyed.modules.size);
const lazy: string[] = [];
for (const { target, root, surveyed } of entries) {
  // dist/lock/index.js's layer is chunks/lock.js; dist/index.js's, chunks/library.js.
  const name = relative(DIST, dirname(resolve(target))) || 'library';
  lazy.push(...addLayer(root, join(CHUNKS, `${name}.js`), surveyed, { target, exports: surveyed.exports }));
}
// Then what loads on first use: the library's, then the command's (its command line, loaded by
// the bin file once the compile cache is on; then each command), one batch at a time: each module
// imported dynamically is a bundle of its own, loaded when first imported, holding what it alone
// reaches; what two of a batch reach (and no layer holds yet) is one bundle they share. A module
// that another of its batch imports statically comes first (cleanLocks lists locks as listLocks
// does: its bundle imports that of listLocks).
const binSources = binEntries.map(sourceOf);
for (const source of binSources) lazy.push(...(await survey(source)).lazy);
const chunkName = (path: string) => relative(SRC, path).replace(/\.ts$/, '').replaceAll('/', '-');
while (lazy.length > 0) {
  const pending = [...new Set(lazy.splice(0))].filter((root) => isSource(root) && !assigned(root));
  const batch = await Promise.all(pending.map(async (root) => ({ root, surveyed: await survey(root) })));
  const reachedByOthers = (root: string) =>
    batch.some((other) => other.root !== root && other.surveyed.modules.has(root));
  const first = batch.filter(({ root }) => reachedByOthers(root));
  for (const { root, surveyed } of first.sort((a, b) => a.surveyed.modules.size - b.surveyed.modules.size)) {
    if (!assigned(root)) lazy.push(...addLayer(root, join(CHUNKS, `${chunkName(root)}.js`), surveyed));
  }
  const rest = batch.filter(({ root }) => !assigned(root));
  const reach = new Map<string, number>();
  for (const { surveyed } of rest) {
    for (const path of surveyed.modules)
      if (isSource(path) && !assigned(path)) reach.set(path, (reach.get(path) ?? 0) + 1);
  }
  const shared = [...reach].flatMap(([path, count]) => (count > 1 ? [path] : []));
  if (shared.length > 0) {
    // Named for the directory the batch's modules share: chunks/cli-commands-shared.js.
    const parts = rest.map(({ root }) => relative(SRC, dirname(root)).split('/'));
    const common = (parts[0] ?? []).filter((part, i) => parts.every((other) => other[i] === part));
    const name = [...common, 'shared'].join('-');
    layers.push({ file: join(CHUNKS, `${name}.js`), modules: new Set(shared), needs: new Map() });
  }
  for (const { root, surveyed } of rest) lazy.push(...addLayer(root, join(CHUNKS, `${chunkName(root)}.js`), surveyed));
}

// What each layer must export to the code of the others.
const everyModule = layers.flatMap((layer) => [...layer.modules]);
for (const layer of layers) {
  layer.needs = await needsOf(
    everyModule.filter((path) => !layer.modules.has(path)),
    layer.modules,
  );
}

for (const layer of layers) {
  const contents = [
    ...(layer.root === undefined ? [] : [`export * from ${JSON.stringify(layer.root)};`]),
    ...[...layer.needs].flatMap(([path, names]) =>
      [...names].map((name) => `export { ${name} as ${internalName(path, name)} } from ${JSON.stringify(path)};`),
    ),
  ].join('\n');
  const others = layers.filter((other) => other !== layer);
  const result = await build({
    ...common,
    stdin: { contents, resolveDir: SRC, sourcefile: `${basename(layer.file, '.js')}.ts`, loader: 'ts' },
    outfile: layer.file,
    plugins: [fromLayers(others, dirname(layer.file))],
    banner: {
      js: [
        layer.root === undefined
          ? '// Modules that two or more bundles loaded on first use share: one copy for the'
          : `// ${relative(SRC, layer.root)} and what it reaches that no other bundle holds: one copy for the`,
        '// package (see scripts/bundle.ts). An export named like lock_acquire$acquireLock is what code',
        '// in another bundle imports from a module this one holds (there, src/lock/acquire.ts).',
      ].join('\n'),
    },
  });
  for (const file of result.outputFiles) write(file.path, file.text);
  if (layer.entry === undefined) continue;
  // The public entry names its exports from the layer.
  const path = resolve(layer.entry.target);
  const from = posix.relative(dirname(path), layer.file);
  const specifier = from.startsWith('.') ? from : `./${from}`;
  const header = `// ${relative(SRC, layer.root ?? '')}'s exports: the code is in ${specifier}.`;
  write(path, `${header}\nexport { ${[...layer.entry.exports].sort().join(', ')} } from "${specifier}";\n`);
}

// The command's bin files: each stays small, for it turns on Node's compile cache before the
// command line loads.
const bins = await build({
  ...common,
  entryPoints: binSources,
  outbase: SRC,
  outdir: DIST,
  plugins: [fromLayers(layers, join(DIST, relative(SRC, dirname(binSources[0] ?? SRC))))],
});
if (binSources.some((source) => dirname(source) !== dirname(binSources[0] ?? ''))) {
  throw new Error('every bin of package.json must be built from one directory of src');
}
for (const file of bins.outputFiles) write(file.path, file.text);
