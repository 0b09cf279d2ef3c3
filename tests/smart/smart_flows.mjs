// SMART App Launch flows against a running Hearth, driven by independent OAuth clients:
// openid-client (code + PKCE, refresh, revocation, introspection, client_credentials with
// private_key_jwt) and jose (client keys, hand-made client assertions for the refusal cases).
//
//   node smart_flows.mjs <scenario>
// Environment (set by smart_flow_tests.cpp):
//   HEARTH_ORIGIN      http://127.0.0.1:<port>
//   HEARTH_ADMIN_TOKEN a static write token (auth.tokens) for the admin API
//   REDIS_PORT, REDIS_PID  the private redis-server Hearth's cache uses (scenario redis-outage)
// Exit code 0 = every check passed; otherwise the failing check is printed.
import * as client from 'openid-client';
import * as jose from 'jose';
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import net from 'node:net';
import http from 'node:http';

const origin = process.env.HEARTH_ORIGIN;
const fhirBase = `${origin}/fhir`;
const adminToken = process.env.HEARTH_ADMIN_TOKEN;
const REDIRECT = 'http://127.0.0.1:9/callback';

let checks = 0;
function check(cond, what, detail) {
  checks++;
  if (!cond) {
    const d = detail === undefined ? '' : `\n  detail: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`;
    throw new Error(`check failed: ${what}${d}`);
  }
}
const uid = () => randomBytes(6).toString('hex');

async function admin(method, path, body) {
  const r = await fetch(origin + path, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null, text };
}

async function fhir(method, path, token, body) {
  const headers = { Accept: 'application/fhir+json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body) headers['Content-Type'] = 'application/fhir+json';
  const r = await fetch(fhirBase + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : null };
}

// A patient record and a user account for it, plus a staff user.
async function setupPeople() {
  const p = await fhir('POST', '/Patient', adminToken, {
    resourceType: 'Patient', name: [{ family: `Flow${uid()}`, given: ['Ada'] }], birthDate: '1980-02-03',
  });
  check(p.status === 201, 'create patient', p);
  const other = await fhir('POST', '/Patient', adminToken, { resourceType: 'Patient', name: [{ family: 'Other' }] });
  const patientUser = `pat-${uid()}`;
  const password = `pw-${uid()}-long`;
  let r = await admin('POST', '/admin/users', { id: patientUser, password, roles: ['patient'], fhirUser: `Patient/${p.json.id}` });
  check(r.status === 201, 'create patient user', r.text);
  const staffUser = `doc-${uid()}`;
  r = await admin('POST', '/admin/users', { id: staffUser, password, roles: ['doctor'], fhirUser: 'Practitioner/d1' });
  check(r.status === 201, 'create staff user', r.text);
  return { patientId: p.json.id, otherId: other.json.id, patientUser, staffUser, password };
}

async function registerPublicClient(extra = {}) {
  const id = `app-${uid()}`;
  const r = await admin('POST', '/admin/clients', { client_id: id, name: 'Test portal', type: 'public', redirect_uris: [REDIRECT], ...extra });
  check(r.status === 201, 'register public client', r.text);
  return id;
}

async function discover(clientId, auth = client.None(), metadata = {}) {
  return client.discovery(new URL(origin), clientId, metadata, auth, { execute: [client.allowInsecureRequests] });
}

// Fills in the login (and consent) pages like a browser: returns the final redirect Location.
async function browserLogin(authorizeUrl, username, password, { patient, cookie, expectLoginStatus = 200 } = {}) {
  let r = await fetch(authorizeUrl, { redirect: 'manual', headers: cookie ? { Cookie: cookie } : {} });
  let html = await r.text();
  if (r.status === 302) return { location: r.headers.get('location') };
  if (!html.includes('name="hearth_step" value="login"') && !html.includes('value="consent"')) {
    return { status: r.status, html };
  }
  const requestId = /name="hearth_request" value="([^"]+)"/.exec(html)?.[1];
  let sessionCookie = cookie;
  if (html.includes('value="login"')) {
    check(r.status === expectLoginStatus, 'login page status', r.status);
    r = await fetch(`${origin}/auth/authorize`, {
      method: 'POST', redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ hearth_step: 'login', hearth_request: requestId, username, password }),
    });
    html = await r.text();
    if (!html.includes('value="consent"')) return { status: r.status, html };
    sessionCookie = (r.headers.get('set-cookie') || '').split(';')[0];
  }
  const form = { hearth_step: 'consent', hearth_request: requestId, decision: 'approve' };
  if (patient) form.patient_id = patient;
  r = await fetch(`${origin}/auth/authorize`, {
    method: 'POST', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: sessionCookie },
    body: new URLSearchParams(form),
  });
  if (r.status !== 302) return { status: r.status, html: await r.text() };
  return { location: r.headers.get('location'), cookie: sessionCookie, html };
}

async function standaloneLaunch(people, scope = 'launch/patient openid fhirUser offline_access patient/*.rs') {
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope, state, aud: fhirBase,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const login = await browserLogin(url, people.patientUser, people.password);
  check(login.location, 'authorize redirects back with a code', login);
  const back = new URL(login.location);
  check(back.searchParams.get('state') === state, 'state echoed', login.location);
  const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedState: state });
  return { clientId, config, tokens, verifier, state };
}

// ------------------------------------------------------------------------------------ scenarios
const scenarios = {};

scenarios['discovery'] = async () => {
  for (const path of ['/.well-known/smart-configuration', '/fhir/.well-known/smart-configuration', '/.well-known/openid-configuration']) {
    const r = await fetch(origin + path);
    check(r.status === 200, `${path} 200`, r.status);
    const j = await r.json();
    check(j.issuer === origin, `${path} issuer`, j.issuer);
    check(j.token_endpoint === `${origin}/auth/token`, `${path} token_endpoint`, j);
    check(JSON.stringify(j.code_challenge_methods_supported) === '["S256"]', `${path} S256 only`, j);
    check(r.headers.get('access-control-allow-origin') === '*', `${path} readable cross-origin (CORS)`);
  }
  const md = await (await fetch(`${fhirBase}/metadata`)).json();
  const sec = md.rest[0].security;
  check(sec.service[0].coding[0].code === 'SMART-on-FHIR', 'CapabilityStatement security service', sec);
  const uris = sec.extension.find((e) => e.url === 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris');
  check(uris.extension.find((e) => e.url === 'token').valueUri === `${origin}/auth/token`, 'oauth-uris token', uris);
  const jwks = await (await fetch(`${origin}/auth/jwks`)).json();
  const kids = jwks.keys.map((k) => k.kid);
  check(kids.length >= 1 && new Set(kids).size === kids.length, 'unique kids', kids);
  check(jwks.keys.every((k) => !('d' in k)), 'no private members in JWKS');
};

scenarios['standalone-launch'] = async () => {
  const people = await setupPeople();
  const { tokens, config } = await standaloneLaunch(people);
  check(tokens.patient === people.patientId, 'token response patient', tokens);
  check(tokens.need_patient_banner === true, 'need_patient_banner', tokens);
  check(typeof tokens.smart_style_url === 'string', 'smart_style_url', tokens);
  check(tokens.expires_in <= 3600, 'access token <= 1 h', tokens.expires_in);
  check(typeof tokens.refresh_token === 'string', 'refresh token with offline_access');
  const claims = tokens.claims();
  check(claims.fhirUser === `${fhirBase}/Patient/${people.patientId}`, 'id_token fhirUser', claims);
  const header = jose.decodeProtectedHeader(tokens.id_token);
  check(header.alg === 'RS256', 'id_token RS256', header);
  // The id_token verifies against the published JWKS.
  const jwks = jose.createRemoteJWKSet(new URL(`${origin}/auth/jwks`));
  await jose.jwtVerify(tokens.id_token, jwks, { issuer: origin, audience: config.clientMetadata().client_id });
  const at = jose.decodeJwt(tokens.access_token);
  check(at.aud === fhirBase && at.iss === origin && at.patient === people.patientId && at.jti, 'access token claims', at);
  check(at.exp - at.iat <= 3600, 'access token lifetime', at);
  const read = await fhir('GET', `/Patient/${people.patientId}`, tokens.access_token);
  check(read.status === 200 && read.json.id === people.patientId, 'read own Patient', read.status);
  // Token endpoint response is not cacheable.
  const raw = await fetch(`${origin}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: config.clientMetadata().client_id }),
  });
  check(raw.status === 200 && raw.headers.get('cache-control') === 'no-store', 'Cache-Control: no-store', raw.status);
};

scenarios['staff-patient-picker'] = async () => {
  const people = await setupPeople();
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch/patient openid fhirUser patient/*.rs', state: 's1', aud: fhirBase,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const login = await browserLogin(url, people.staffUser, people.password, { patient: people.otherId });
  check(login.location, 'staff login + picker redirects', login);
  const tokens = await client.authorizationCodeGrant(config, new URL(login.location), { pkceCodeVerifier: verifier, expectedState: 's1' });
  check(tokens.patient === people.otherId, 'picked patient in token response', tokens);
  check(tokens.claims().fhirUser === `${fhirBase}/Practitioner/d1`, 'staff fhirUser', tokens.claims());
};

// Every step of a standalone launch is in the audit trail, found by the patient: the login, the
// token issues (code and refresh), the read (the token's jti as agent policy) and the revocation.
scenarios['audit-trail'] = async () => {
  const people = await setupPeople();
  const { tokens, config } = await standaloneLaunch(people);
  const clientId = config.clientMetadata().client_id;
  const jti = jose.decodeJwt(tokens.access_token).jti;
  const read = await fhir('GET', `/Patient/${people.patientId}`, tokens.access_token);
  check(read.status === 200, 'read own Patient', read.status);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  await client.tokenRevocation(config, refreshed.refresh_token);
  const r = await fhir('GET', `/AuditEvent?patient=${people.patientId}&_count=1000`, adminToken);
  check(r.status === 200, 'AuditEvent?patient=', r.status);
  const events = (r.json.entry || []).map((e) => e.resource);
  const sub = (e) => e.subtype?.[0]?.code;
  const byClient = (e) => (e.agent || []).some((a) => a.who?.identifier?.system === 'urn:hearth:oauth-client' &&
    a.who.identifier.value === clientId);
  const seen = events.map((e) => `${sub(e)}/${e.outcome}`);
  check(events.some((e) => sub(e) === '110122' && e.outcome === '0'), 'login audited', seen);
  check(events.filter((e) => sub(e) === 'token-issued' && e.outcome === '0' && byClient(e)).length >= 2,
    'code and refresh token issues audited', seen);
  check(events.some((e) => sub(e) === 'read' && e.action === 'R' &&
    (e.agent || []).some((a) => (a.policy || []).includes(jti)) &&
    (e.entity || []).some((x) => x.what?.reference === `Patient/${people.patientId}`)), 'read audited with the token jti', seen);
  check(events.some((e) => sub(e) === 'token-revoked' && byClient(e)), 'revocation audited', seen);
};

scenarios['ehr-launch'] = async () => {
  const people = await setupPeople();
  const l = await admin('POST', '/auth/launch', { patient: people.patientId, encounter: 'enc-1' });
  check(l.status === 201 && l.json.launch, 'launch handle', l.text);
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const verifier = client.randomPKCECodeVerifier();
  const mk = async (launch) => client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch openid fhirUser patient/*.rs launch/encounter', state: 'e1', aud: fhirBase, launch,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const login = await browserLogin(await mk(l.json.launch), people.staffUser, people.password);
  const tokens = await client.authorizationCodeGrant(config, new URL(login.location), { pkceCodeVerifier: verifier, expectedState: 'e1' });
  check(tokens.patient === people.patientId && tokens.encounter === 'enc-1', 'EHR launch context', tokens);
  check(tokens.need_patient_banner === false, 'no banner in EHR launch', tokens);
  // The handle is single use.
  const again = await fetch(await mk(l.json.launch), { redirect: 'manual' });
  const loc = new URL(again.headers.get('location'));
  check(again.status === 302 && loc.searchParams.get('error') === 'invalid_request', 'launch handle reuse refused', loc.href);
};

scenarios['refresh-rotation'] = async () => {
  const people = await setupPeople();
  const { tokens, config } = await standaloneLaunch(people);
  const r1 = await client.refreshTokenGrant(config, tokens.refresh_token);
  check(r1.refresh_token && r1.refresh_token !== tokens.refresh_token, 'refresh token rotated');
  check(r1.patient === people.patientId, 'refresh keeps patient context', r1);
  const read = await fhir('GET', `/Patient/${people.patientId}`, r1.access_token);
  check(read.status === 200, 'refreshed token reads', read.status);
  // Reusing the rotated (old) token is refused and revokes the family: the newest one dies too.
  let reused = false;
  try { await client.refreshTokenGrant(config, tokens.refresh_token); } catch (e) { reused = e.error === 'invalid_grant'; }
  check(reused, 'rotated refresh token refused (invalid_grant)');
  let familyDead = false;
  try { await client.refreshTokenGrant(config, r1.refresh_token); } catch (e) { familyDead = e.error === 'invalid_grant'; }
  check(familyDead, 'reuse revoked the whole family');
  // ... and the access tokens issued under it (the refreshed one read a moment ago).
  const after = await fhir('GET', `/Patient/${people.patientId}`, r1.access_token);
  check(after.status === 401, 'reuse denied the access tokens of the family', after.status);
};

scenarios['revocation'] = async () => {
  const people = await setupPeople();
  const { tokens, config } = await standaloneLaunch(people);
  let r = await fhir('GET', `/Patient/${people.patientId}`, tokens.access_token);
  check(r.status === 200, 'reads before revocation', r.status);
  const intro1 = await client.tokenIntrospection(config, tokens.access_token).catch(() => null);
  // A public client cannot introspect; use the bearer form instead.
  const introspect = async (token) => (await fetch(`${origin}/auth/introspect`, {
    method: 'POST', headers: { Authorization: `Bearer ${tokens.access_token}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  })).json();
  check(intro1 === null || intro1.active === true, 'introspection (client)', intro1);
  check((await introspect(tokens.access_token)).active === true, 'introspection: active');
  await client.tokenRevocation(config, tokens.access_token);
  r = await fhir('GET', `/Patient/${people.patientId}`, tokens.access_token);
  check(r.status === 401, 'revoked token -> 401', r.status);
  check((r.headers.get('www-authenticate') || '').includes('error="invalid_token"'), 'invalid_token challenge', r.headers.get('www-authenticate'));
  // Revoking the refresh token kills its family.
  await client.tokenRevocation(config, tokens.refresh_token);
  let dead = false;
  try { await client.refreshTokenGrant(config, tokens.refresh_token); } catch (e) { dead = e.error === 'invalid_grant'; }
  check(dead, 'revoked refresh token refused');
  // Revoking a refresh token also denies every access token issued under its grant (RFC 7009
  // 2.1), the first one and the refreshed one alike; introspection reports them inactive.
  const second = await standaloneLaunch(people);
  const r2 = await client.refreshTokenGrant(second.config, second.tokens.refresh_token);
  r = await fhir('GET', `/Patient/${people.patientId}`, r2.access_token);
  check(r.status === 200, 'refreshed token reads before its grant is revoked', r.status);
  const probe = second.tokens.access_token;
  await client.tokenRevocation(second.config, r2.refresh_token);
  for (const [name, t] of [['first', second.tokens.access_token], ['refreshed', r2.access_token]]) {
    r = await fhir('GET', `/Patient/${people.patientId}`, t);
    check(r.status === 401, `${name} access token of a revoked grant -> 401`, r.status);
  }
  const live = (await standaloneLaunch(people)).tokens.access_token;
  const intro = await fetch(`${origin}/auth/introspect`, {
    method: 'POST', headers: { Authorization: `Bearer ${live}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: probe }),
  });
  const introBody = await intro.json();
  check(intro.status === 200 && introBody.active === false, 'introspection: access token of a revoked grant inactive', introBody);
};

scenarios['invalid-aud'] = async () => {
  const people = await setupPeople();
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs', state: 'a1', aud: 'https://not-this-server.example/fhir',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const r = await fetch(url, { redirect: 'manual' });
  check(r.status === 400 && !r.headers.get('location'), 'invalid aud: error page, no code', r.status);
  const body = await r.text();
  check(!body.includes('hearth_step'), 'invalid aud: no login form');
  void people;
};

scenarios['pkce'] = async () => {
  const people = await setupPeople();
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const base = { redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs', state: 'p1', aud: fhirBase, client_id: clientId, response_type: 'code' };
  const expectRedirectError = async (params, what) => {
    const u = new URL(`${origin}/auth/authorize`);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    const r = await fetch(u, { redirect: 'manual' });
    const loc = r.headers.get('location');
    check(r.status === 302 && loc && new URL(loc).searchParams.get('error') === 'invalid_request', what, loc || r.status);
    check(new URL(loc).searchParams.get('state') === 'p1', `${what}: state echoed`, loc);
  };
  await expectRedirectError(base, 'missing PKCE refused');
  const verifier = client.randomPKCECodeVerifier();
  await expectRedirectError({ ...base, code_challenge: verifier, code_challenge_method: 'plain' }, 'plain PKCE refused');
  // A valid S256 challenge, but the wrong verifier (and none) at the token endpoint.
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs', state: 'p2', aud: fhirBase,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const login = await browserLogin(url, people.patientUser, people.password);
  const code = new URL(login.location).searchParams.get('code');
  const tokenReq = (extra) => fetch(`${origin}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: clientId, ...extra }),
  });
  let r = await tokenReq({ code_verifier: client.randomPKCECodeVerifier() });
  check(r.status === 400 && (await r.json()).error === 'invalid_grant', 'wrong verifier refused', r.status);
  // The code was consumed by the failed attempt: even the right verifier fails now (single use).
  r = await tokenReq({ code_verifier: verifier });
  check(r.status === 400 && (await r.json()).error === 'invalid_grant', 'code single use', r.status);
  // Missing verifier on a fresh code.
  const login2 = await browserLogin(url, people.patientUser, people.password);
  const code2 = new URL(login2.location).searchParams.get('code');
  r = await fetch(`${origin}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: code2, redirect_uri: REDIRECT, client_id: clientId }),
  });
  check(r.status === 400 && (await r.json()).error === 'invalid_grant', 'missing verifier refused', r.status);
  // Exact redirect_uri match at /authorize.
  const bad = new URL(`${origin}/auth/authorize`);
  for (const [k, v] of Object.entries({ ...base, redirect_uri: `${REDIRECT}/x`, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) bad.searchParams.set(k, v);
  const br = await fetch(bad, { redirect: 'manual' });
  check(br.status === 400 && !br.headers.get('location'), 'unregistered redirect_uri: error page, no redirect', br.status);
};

scenarios['mixed-scopes'] = async () => {
  const clientId = await registerPublicClient();
  const u = new URL(`${origin}/auth/authorize`);
  const verifier = client.randomPKCECodeVerifier();
  for (const [k, v] of Object.entries({
    redirect_uri: REDIRECT, scope: 'patient/Observation.rs user/Patient.rs', state: 'm1', aud: fhirBase, client_id: clientId,
    response_type: 'code', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  })) u.searchParams.set(k, v);
  const r = await fetch(u, { redirect: 'manual' });
  const loc = r.headers.get('location');
  check(r.status === 302 && new URL(loc).searchParams.get('error') === 'invalid_scope', 'mixed patient/user scopes refused', loc);
};

scenarios['lockout'] = async () => {
  const people = await setupPeople();
  const clientId = await registerPublicClient();
  const config = await discover(clientId);
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs', state: 'l1', aud: fhirBase,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  for (let i = 0; i < 5; i++) {
    const r = await browserLogin(url, people.patientUser, 'wrong-password!');
    check(r.status === 401, `failed login ${i + 1} -> 401`, r.status);
  }
  const locked = await browserLogin(url, people.patientUser, people.password);
  check(locked.status === 429 && !locked.location, 'locked account refuses the right password', locked.status);
  // An admin password reset unlocks.
  const reset = await admin('POST', `/admin/users/${people.patientUser}/password`, { password: people.password });
  check(reset.status === 204, 'password reset', reset.text);
  const ok = await browserLogin(url, people.patientUser, people.password);
  check(ok.location, 'login after reset', ok);
};

// --- backend services (client_credentials + private_key_jwt)
async function backendClient(alg, extra = {}) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: `k-${uid()}`, alg, use: 'sig' };
  const id = `svc-${uid()}`;
  const r = await admin('POST', '/admin/clients', {
    client_id: id, type: 'confidential-asymmetric', jwks: { keys: [jwk] }, scope: 'system/*.rs', roles: ['admin'], ...extra,
  });
  check(r.status === 201, 'register backend client', r.text);
  return { id, privateKey, kid: jwk.kid, alg };
}

function assertion(c, { aud = `${origin}/auth/token`, exp, iat, jti, alg, key, header = {}, iss, sub } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ jti: jti || uid() + uid() })
    .setProtectedHeader({ alg: alg || c.alg, kid: c.kid, typ: 'JWT', ...header })
    .setIssuer(iss || c.id).setSubject(sub || c.id).setAudience(aud)
    .setIssuedAt(iat || now).setExpirationTime(exp || now + 240)
    .sign(key || c.privateKey);
}

async function tokenWithAssertion(jwt, scope = 'system/*.rs') {
  const r = await fetch(`${origin}/auth/token`, {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: jwt,
    }),
  });
  return { status: r.status, json: await r.json().catch(() => null), headers: r.headers };
}

scenarios['backend-services'] = async () => {
  for (const alg of ['RS384', 'ES384']) {
    const c = await backendClient(alg);
    const config = await discover(c.id, client.PrivateKeyJwt({ key: c.privateKey, kid: c.kid }));
    const t = await client.clientCredentialsGrant(config, { scope: 'system/*.rs' });
    check(t.expires_in <= 300, `${alg}: backend token <= 5 min`, t);
    const at = jose.decodeJwt(t.access_token);
    check(at.sub === c.id && at.client_id === c.id && at.exp - at.iat <= 300, `${alg}: backend claims`, at);
    const r = await fhir('GET', '/Patient?_count=1', t.access_token);
    check(r.status === 200, `${alg}: backend token reads`, r.status);
    // Refusals, each with a fresh jti unless the point is the replay.
    const bad = [];
    const other = await jose.generateKeyPair(alg);
    bad.push(['bad signature', await assertion(c, { key: other.privateKey })]);
    bad.push(['wrong aud', await assertion(c, { aud: 'https://elsewhere.example/token' })]);
    const now = Math.floor(Date.now() / 1000);
    bad.push(['expired', await assertion(c, { iat: now - 900, exp: now - 600 })]);
    bad.push(['exp more than 5 min ahead', await assertion(c, { iat: now, exp: now + 3600 })]);
    bad.push(['foreign jku', await assertion(c, { header: { jku: 'https://attacker.example/jwks.json' } })]);
    bad.push(['iss != sub', await assertion(c, { sub: 'someone-else' })]);
    const none = `${jose.base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${jose.base64url.encode(JSON.stringify({
      iss: c.id, sub: c.id, aud: `${origin}/auth/token`, jti: uid(), exp: now + 60 }))}.`;
    bad.push(['alg none', none]);
    for (const [what, jwt] of bad) {
      const r2 = await tokenWithAssertion(jwt);
      check(r2.status === 401 && r2.json?.error === 'invalid_client', `${alg}: ${what} refused`, r2);
    }
    const once = await assertion(c, { jti: `replay-${uid()}` });
    const first = await tokenWithAssertion(once);
    check(first.status === 200, `${alg}: first use of an assertion`, first);
    check(first.headers.get('cache-control') === 'no-store', `${alg}: no-store`, first.headers.get('cache-control'));
    const replay = await tokenWithAssertion(once);
    check(replay.status === 401 && replay.json?.error === 'invalid_client', `${alg}: replayed jti refused`, replay);
    // aud = issuer is accepted as well.
    const issAud = await tokenWithAssertion(await assertion(c, { aud: origin }));
    check(issAud.status === 200, `${alg}: aud = issuer accepted`, issAud);
    // Patient/user scopes are not for backend services.
    const wrongScope = await tokenWithAssertion(await assertion(c), 'patient/*.rs');
    check(wrongScope.status === 400 && wrongScope.json?.error === 'invalid_scope', `${alg}: patient scope refused`, wrongScope);
  }
};

// A backend client registered with a jku instead of keys: Hearth fetches the JWKS from that URL
// (served here by a real HTTP server), and only from it.
scenarios['backend-jku'] = async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES384', { extractable: true });
  const kid = `k-${uid()}`;
  const jwks = { keys: [{ ...(await jose.exportJWK(publicKey)), kid, alg: 'ES384', use: 'sig' }] };
  let fetched = 0;
  const server = http.createServer((req, res) => {
    fetched += 1;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const jku = `http://127.0.0.1:${server.address().port}/jwks.json`;
    const id = `svc-jku-${uid()}`;
    const reg = await admin('POST', '/admin/clients', {
      client_id: id, type: 'confidential-asymmetric', jku: [jku], scope: 'system/*.rs', roles: ['admin'],
    });
    check(reg.status === 201, 'register a jku client', reg.text);
    const c = { id, privateKey, kid, alg: 'ES384' };
    const ok = await tokenWithAssertion(await assertion(c, { header: { jku } }));
    check(ok.status === 200 && ok.json?.access_token, 'assertion verified with keys fetched from the registered jku', ok);
    check(fetched >= 1, 'the registered jku was fetched', fetched);
    const r = await fhir('GET', '/Patient?_count=1', ok.json.access_token);
    check(r.status === 200, 'jku client token reads', r.status);
    // Without a jku header the single registered jku is used; another key is still refused.
    const implicit = await tokenWithAssertion(await assertion(c));
    check(implicit.status === 200, 'the single registered jku serves assertions without a jku header', implicit);
    const other = await jose.generateKeyPair('ES384');
    const forged = await tokenWithAssertion(await assertion(c, { key: other.privateKey, header: { jku } }));
    check(forged.status === 401 && forged.json?.error === 'invalid_client', 'a key not in the jku JWKS is refused', forged);
    const elsewhere = await tokenWithAssertion(await assertion(c, { header: { jku: `http://127.0.0.1:${server.address().port}/other.json` } }));
    check(elsewhere.status === 401, 'a jku other than the registered one is refused', elsewhere);
  } finally {
    server.close();
  }
};

scenarios['symmetric-client'] = async () => {
  const people = await setupPeople();
  const id = `conf-${uid()}`;
  const reg = await admin('POST', '/admin/clients', { client_id: id, type: 'confidential-symmetric', redirect_uris: [REDIRECT] });
  check(reg.status === 201 && reg.json.client_secret, 'symmetric client secret shown once', reg.text);
  const list = await admin('GET', `/admin/clients/${id}`);
  check(!list.text.includes(reg.json.client_secret), 'secret not readable later');
  const config = await discover(id, client.ClientSecretBasic(reg.json.client_secret));
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT, scope: 'launch/patient patient/*.rs offline_access', state: 'c1', aud: fhirBase,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const login = await browserLogin(url, people.patientUser, people.password);
  const tokens = await client.authorizationCodeGrant(config, new URL(login.location), { pkceCodeVerifier: verifier, expectedState: 'c1' });
  check(tokens.access_token && tokens.patient === people.patientId, 'symmetric client code flow', tokens);
  const intro = await client.tokenIntrospection(config, tokens.access_token);
  check(intro.active === true && intro.patient === people.patientId, 'introspection by a confidential client', intro);
  const wrong = await discover(id, client.ClientSecretBasic('not-the-secret'));
  let refused = false;
  // RFC 6749 5.2: 401 with a WWW-Authenticate challenge (openid-client reports the challenge).
  try { await client.refreshTokenGrant(wrong, tokens.refresh_token); } catch (e) { refused = e.error === 'invalid_client' || e.status === 401; }
  check(refused, 'wrong client secret refused');
};

// Redis goes away mid-test: valid JWTs keep working, the token endpoint answers 503, and service
// recovers once Redis is back.
function startRedis(port) {
  const p = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--logfile', '/dev/null', '--dir', '/tmp'], { stdio: 'ignore' });
  return p;
}
async function waitPort(port, up) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((res) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok === up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis port ${port} did not become ${up ? 'open' : 'closed'}`);
}

scenarios['redis-outage'] = async () => {
  const port = Number(process.env.REDIS_PORT);
  const people = await setupPeople();
  const { tokens, config } = await standaloneLaunch(people);
  const c = await backendClient('ES384');
  process.kill(Number(process.env.REDIS_PID), 'SIGKILL');
  await waitPort(port, false);
  let restarted = null;
  try {
    const r = await fhir('GET', `/Patient/${people.patientId}`, tokens.access_token);
    check(r.status === 200, 'valid JWT still reads with Redis down', r.status);
    const t = await tokenWithAssertion(await assertion(c));
    check(t.status === 503 && t.json?.error === 'temporarily_unavailable', 'token endpoint 503 with Redis down', t);
    let failed = null;
    try { await client.refreshTokenGrant(config, tokens.refresh_token); } catch (e) { failed = e; }
    check(failed && (failed.status === 503 || failed.cause?.status === 503 || failed.error === 'temporarily_unavailable'), 'refresh 503 with Redis down', String(failed));
    restarted = startRedis(port);
    await waitPort(port, true);
    const t2 = await tokenWithAssertion(await assertion(c));
    check(t2.status === 200, 'token endpoint recovers when Redis returns', t2);
    const r2 = await fhir('GET', `/Patient/${people.patientId}`, t2.json.access_token);
    check(r2.status === 200, 'new token reads', r2.status);
  } finally {
    if (restarted) restarted.kill('SIGKILL');
  }
};

const name = process.argv[2];
if (!scenarios[name]) {
  console.error(`unknown scenario ${name}; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}
try {
  await scenarios[name]();
  console.log(`${name}: ${checks} checks passed`);
} catch (e) {
  console.error(`${name}: ${e.stack || e}`);
  if (e.cause) console.error('cause:', e.cause);
  process.exit(1);
}
void createHash;
