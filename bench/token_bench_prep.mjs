// token_bench.sh helper (Node built-ins only): registers a backend-service client with a fresh
// RS384 key through the admin API, then prints N distinct client assertions (one per line) for
// POST /auth/token. Usage: node token_bench_prep.mjs <origin> <admin-token> <n> <client-id>
import { generateKeyPairSync, sign, randomBytes } from 'node:crypto';

const [origin, adminToken, nText, clientId] = process.argv.slice(2);
const n = Number(nText);
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'bench-1', alg: 'RS384', use: 'sig' };
const r = await fetch(`${origin}/admin/clients`, {
  method: 'POST',
  headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
  body: JSON.stringify({ client_id: clientId, type: 'confidential-asymmetric', jwks: { keys: [jwk] }, scope: 'system/*.rs', roles: ['admin'] }),
});
if (r.status !== 201) {
  console.error(`client registration failed: ${r.status} ${await r.text()}`);
  process.exit(1);
}
const b64 = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const header = b64({ alg: 'RS384', kid: 'bench-1', typ: 'JWT' });
const now = Math.floor(Date.now() / 1000);
const out = [];
for (let i = 0; i < n; i++) {
  const payload = b64({ iss: clientId, sub: clientId, aud: `${origin}/auth/token`, jti: randomBytes(12).toString('hex'), iat: now, exp: now + 290 });
  const input = `${header}.${payload}`;
  out.push(`${input}.${sign('sha384', Buffer.from(input), privateKey).toString('base64url')}`);
}
process.stdout.write(out.join('\n') + '\n');
