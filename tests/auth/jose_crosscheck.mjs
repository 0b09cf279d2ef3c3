// Cross-check between Hearth's C++ JOSE code and the independent npm `jose` library, driven by
// tests/auth/jose_test.cpp:
//   node jose_crosscheck.mjs sign ALG     -> prints {"jwks":{...},"token":"..."}: a fresh key pair
//                                           made by jose, the token signed by jose
//   node jose_crosscheck.mjs verify < in  -> in = {"jwks":{...},"token":"...","alg":"..."}; jose
//                                           verifies; prints the payload, exit 1 with the error code
import * as jose from 'jose';
import { readFileSync } from 'node:fs';

const [, , mode, alg] = process.argv;
if (mode === 'sign') {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  jwk.kid = 'node-' + alg;
  jwk.alg = alg;
  jwk.use = 'sig';
  const now = Math.floor(Date.now() / 1000);
  const token = await new jose.SignJWT({ scope: 'system/Patient.rs' })
    .setProtectedHeader({ alg, kid: jwk.kid, typ: 'JWT' })
    .setIssuer('node-client').setSubject('node-client').setAudience('https://hearth.test/auth/token')
    .setIssuedAt(now).setExpirationTime(now + 300).setJti('jti-' + now + '-' + Math.random())
    .sign(privateKey);
  process.stdout.write(JSON.stringify({ jwks: { keys: [jwk] }, token }));
} else if (mode === 'verify') {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  try {
    const keys = jose.createLocalJWKSet(input.jwks);
    const { payload } = await jose.jwtVerify(input.token, keys, { algorithms: [input.alg] });
    process.stdout.write(JSON.stringify(payload));
  } catch (e) {
    process.stdout.write(String(e.code || e.name));
    process.exit(1);
  }
} else {
  console.error('usage: jose_crosscheck.mjs sign ALG | verify < input.json');
  process.exit(2);
}
