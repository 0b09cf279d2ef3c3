// Validates saved FHIR JSON bodies against the official R4 JSON schema (fhir.schema.json, draft-06).
//
// Usage: node validate.mjs [--schema PATH] <file-or-dir>...
//   Every *.json file named (directories are walked recursively) must be a JSON object whose
//   resourceType is defined by the schema, and must validate against #/definitions/<resourceType>.
// Default schema: $HEARTH_FHIR_SCHEMA, else <repo>/../shared/fhir-r4/fhir.schema.json.
// Exit code: 0 all valid, 1 some invalid, 2 usage/setup error (no schema, no files).
// Prints one line per invalid file with the first errors, then a summary line.
import Ajv from 'ajv';
import draft06 from 'ajv/dist/refs/json-schema-draft-06.json' with { type: 'json' };
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
let schemaPath = process.env.HEARTH_FHIR_SCHEMA ||
  path.resolve(here, '..', '..', '..', 'shared', 'fhir-r4', 'fhir.schema.json');
const targets = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--schema') schemaPath = args[++i];
  else targets.push(args[i]);
}
if (targets.length === 0) {
  console.error('usage: node validate.mjs [--schema PATH] <file-or-dir>...');
  process.exit(2);
}
if (!fs.existsSync(schemaPath)) {
  console.error(`schema not found: ${schemaPath} (set HEARTH_FHIR_SCHEMA or pass --schema)`);
  process.exit(2);
}

function collect(p, out) {
  const st = fs.statSync(p);
  if (st.isDirectory()) {
    for (const name of fs.readdirSync(p).sort()) collect(path.join(p, name), out);
  } else if (p.endsWith('.json')) {
    out.push(p);
  }
}
const files = [];
for (const t of targets) {
  if (!fs.existsSync(t)) {
    console.error(`no such file or directory: ${t}`);
    process.exit(2);
  }
  collect(t, files);
}
if (files.length === 0) {
  console.error(`no .json files under: ${targets.join(' ')}`);
  process.exit(2);
}

// The R4 schema is draft-06 and names itself with the pre-draft-06 `id` keyword; ajv wants `$id`.
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
if (schema.id && !schema.$id) {
  schema.$id = schema.id;
  delete schema.id;
}
const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
ajv.addMetaSchema(draft06);
ajv.addSchema(schema);
const base = schema.$id;
const validators = new Map();
function validatorFor(type) {
  if (!validators.has(type)) validators.set(type, ajv.getSchema(`${base}#/definitions/${type}`));
  return validators.get(type);
}

let valid = 0;
let invalid = 0;
for (const file of files) {
  const rel = path.relative(process.cwd(), file);
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.log(`INVALID ${rel}: not JSON (${e.message})`);
    invalid++;
    continue;
  }
  const type = doc && typeof doc === 'object' && !Array.isArray(doc) ? doc.resourceType : undefined;
  if (typeof type !== 'string' || !(schema.discriminator?.mapping ?? {})[type]) {
    console.log(`INVALID ${rel}: resourceType ${JSON.stringify(type)} is not an R4 resource type`);
    invalid++;
    continue;
  }
  const validate = validatorFor(type);
  if (validate(doc)) {
    valid++;
    continue;
  }
  invalid++;
  const errs = validate.errors.slice(0, 8)
    .map((e) => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` '${e.params.additionalProperty}'` : ''}`);
  console.log(`INVALID ${rel} (${type}): ${errs.join('; ')}${validate.errors.length > 8 ? ` (+${validate.errors.length - 8} more)` : ''}`);
}
console.log(`schema check: ${valid} valid, ${invalid} invalid, of ${files.length} files`);
process.exit(invalid === 0 ? 0 : 1);
