// A real OpenID Connect provider (oidc-provider, a certified implementation)
// configured the way Filevine Identity behaves for partner apps, for the
// SDK's end-to-end sign-in tests. Started by the tests themselves
// (tests/support/oidc.rs) or by hand:
//
//   node filevine-identity-ext/tests/oidc-provider/server.mjs [port]
//
// It prints one JSON line, {"issuer": "..."}, once it listens on 127.0.0.1,
// and exits when its standard input closes, so a test process that dies
// cannot leave it running. PORT=0 (the default) picks a free port.
//
// Proof of possession (private_key_jwt, RFC 7523; DPoP, RFC 9449): two
// clients authenticate with keys the provider makes at start and hands to
// the tests (/_harness/client-keys); one of them gets only DPoP-bound
// tokens, and every DPoP proof must carry a server nonce.
//
// Like Filevine: IdentityServer's endpoint paths (/connect/token, …; the
// device flow at IdentityServer's /connect/deviceauthorization),
// confidential clients, PKCE required, RS512 ID tokens, refresh-token
// rotation, the Filevine scopes, a 5-minute access token.
//
// Besides the provider, a few /_harness/ routes let tests mint tokens with
// the provider's own signing key (for the negative matrix: wrong nonce, aud,
// iss, expired…), count JWKS fetches, publish a rotated key, and move the
// provider's clock forward (/_harness/advance), so a test can let an
// authorization code expire without waiting for it.

import { generateKeyPairSync, createPrivateKey, createSign, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

// The provider's clock: the real one plus whatever /_harness/advance added.
// oidc-provider reads Date.now() for every expiry check.
const realNow = Date.now;
let clockOffsetMs = 0;
Date.now = () => realNow() + clockOffsetMs;

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const accessTokenTtl = Number(process.env.OIDC_ACCESS_TOKEN_TTL ?? 300);
const redirectHost = process.env.OIDC_REDIRECT_HOST ?? 'http://127.0.0.1:7059';

// The provider's signing key, and two keys it does not publish: "rotated"
// joins the JWKS when /_harness/rotate is called, "stranger" never does.
function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig' };
}
const keys = { provider: rsaKey('filevine-test-1'), rotated: rsaKey('filevine-test-2'), stranger: rsaKey('stranger') };
const publicJwk = ({ kty, n, e, kid, use }) => ({ kty, n, e, kid, use });

// The clients' own keys: a P-256 JWK and an RSA key (given to the tests as
// PKCS#8 PEM). The provider registers only their public halves.
const clientKeys = {
  ec: { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }), kid: 'partner-app-jwt-1' },
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
};
const publicEc = ({ kty, crv, x, y, kid }) => ({ kty, crv, x, y, kid });
const rsaClientJwk = { ...publicJwk(clientKeys.rsa.export({ format: 'jwk' })), kid: 'partner-app-rsa-1' };

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0): with
// OIDC_BACKCHANNEL_LOGOUT_URI, the partner app is told when a user's
// session ends here, with the session's sid.
const backchannelLogoutUri = process.env.OIDC_BACKCHANNEL_LOGOUT_URI;

const clients = [
  {
    // The partner app of the tests and examples/partner_app.rs.
    client_id: 'partner-app',
    client_secret: 'partner-app-secret',
    token_endpoint_auth_method: 'client_secret_post',
    ...(backchannelLogoutUri
      ? { backchannel_logout_uri: backchannelLogoutUri, backchannel_logout_session_required: true }
      : {}),
  },
  {
    client_id: 'partner-app-basic',
    client_secret: 'partner-app-basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    // private_key_jwt with an EC key, and only DPoP-bound tokens.
    client_id: 'partner-app-jwt',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [publicEc(clientKeys.ec)] },
    dpop_bound_access_tokens: true,
  },
  {
    // private_key_jwt with an RSA key; the provider accepts PS256, not RS256.
    client_id: 'partner-app-rsa',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [rsaClientJwk] },
  },
].map((client) => ({
  ...client,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [`${redirectHost}/signin-oidc`],
  post_logout_redirect_uris: [`${redirectHost}/logout/callback`],
  id_token_signed_response_alg: 'RS512',
}));
// The filevine-auth command line tool: a native public client (no secret,
// PKCE) with an RFC 8252 loopback redirect; oidc-provider accepts any port
// on a loopback redirect URI for a native client.
clients.push({
  client_id: 'filevine-cli',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  // `filevine-auth login --device` (RFC 8628) too.
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/callback'],
  id_token_signed_response_alg: 'RS512',
});

const accounts = new Map();
function account(id) {
  if (!accounts.has(id)) {
    accounts.set(id, {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: true,
          name: `Test User ${id}`,
          given_name: 'Test',
          family_name: id,
          tenant: 'acme-law',
        };
      },
    });
  }
  return accounts.get(id);
}

const configuration = {
  clients,
  jwks: { keys: [keys.provider] },
  findAccount: async (_ctx, id) => account(id),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
    tenant: ['tenant'],
  },
  scopes: [
    'openid', 'offline_access', 'email', 'profile', 'tenant',
    'fv.auth.tenant.read', 'filevine.v2.api.*', 'fv.api.gateway.access',
  ],
  routes: {
    authorization: '/connect/authorize',
    token: '/connect/token',
    userinfo: '/connect/userinfo',
    end_session: '/connect/endsession',
    revocation: '/connect/revocation',
    introspection: '/connect/introspect',
    jwks: '/.well-known/openid-configuration/jwks',
    device_authorization: '/connect/deviceauthorization',
    code_verification: '/device',
    pushed_authorization_request: '/connect/par',
  },
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
    // Device sign-in (RFC 8628): the user types the code at /device.
    deviceFlow: { enabled: true },
    // DPoP with server nonces on every proof (RFC 9449 §8, §9).
    dPoP: { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true },
    // Pushed authorization requests (RFC 9126), on as in oidc-provider's
    // defaults; OIDC_REQUIRE_PAR=1 makes them the only way to sign in.
    pushedAuthorizationRequests: {
      enabled: true,
      requirePushedAuthorizationRequests: process.env.OIDC_REQUIRE_PAR === '1',
    },
  },
  enabledJWA: {
    idTokenSigningAlgValues: ['RS256', 'RS384', 'RS512'],
    // As FAPI 2.0 asks: no RS256 client assertions.
    clientAuthSigningAlgValues: ['ES256', 'PS256'],
  },
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 600,
    Session: 24 * 3600,
  },
  cookies: { keys: ['filevine-identity-sdk-tests'] },
  // The provider's own requests (back-channel logout posts) go to the test
  // apps, which listen on 127.0.0.1: without the dispatcher that
  // oidc-provider adds to refuse special-use addresses (its SSRF guard).
  fetch: (url, { dispatcher: _loopbackRefused, ...options }) => globalThis.fetch(url, options),
};

const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const RSA_HASH = { RS256: 'RSA-SHA256', RS384: 'RSA-SHA384', RS512: 'RSA-SHA512' };

// Signs `claims` as a JWT with one of the keys above, the header as given.
function sign({ header, claims, key = 'provider' }) {
  const jwk = keys[key];
  const fullHeader = { typ: 'JWT', kid: jwk.kid, ...header };
  const input = `${b64url(fullHeader)}.${b64url(claims)}`;
  const signer = createSign(RSA_HASH[fullHeader.alg] ?? 'RSA-SHA512');
  signer.update(input);
  return `${input}.${signer.sign(createPrivateKey({ key: jwk, format: 'jwk' })).toString('base64url')}`;
}

const stats = {
  jwks: 0, token: 0, userinfo: 0, revocation: 0, introspection: 0, discovery: 0, par: 0,
  // Back-channel logout posts that the app answered 200, and the errors of the others.
  backchannel: 0, backchannel_errors: [],
};
let rotated = false;

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
}

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  const handle = provider.callback();
  provider.on('backchannel.success', () => { stats.backchannel += 1; });
  provider.on('backchannel.error', (_ctx, error) => { stats.backchannel_errors.push(String(error)); });

  server.on('request', async (req, res) => {
    const path = new URL(req.url, issuer).pathname;
    try {
      if (path === '/_harness/sign' && req.method === 'POST') {
        return sendJson(res, 200, { jwt: sign(await readJson(req)) });
      }
      if (path === '/_harness/stats') return sendJson(res, 200, stats);
      if (path === '/_harness/rotate' && req.method === 'POST') {
        rotated = true;
        return sendJson(res, 200, { kid: keys.rotated.kid });
      }
      if (path === '/_harness/advance' && req.method === 'POST') {
        const { seconds } = await readJson(req);
        if (!Number.isInteger(seconds) || seconds < 0) throw new Error('seconds must be a non-negative integer');
        clockOffsetMs += seconds * 1000;
        return sendJson(res, 200, { offset_seconds: clockOffsetMs / 1000 });
      }
      if (path === '/_harness/client-keys') {
        return sendJson(res, 200, {
          ec_jwk: clientKeys.ec,
          rsa_pem: clientKeys.rsa.export({ format: 'pem', type: 'pkcs8' }),
          rsa_kid: rsaClientJwk.kid,
        });
      }
      if (path === '/_harness/public-keys') {
        return sendJson(res, 200, { provider: publicJwk(keys.provider), rotated: publicJwk(keys.rotated) });
      }
    } catch (error) {
      return sendJson(res, 400, { error: String(error) });
    }

    if (path === configuration.routes.jwks) {
      stats.jwks += 1;
      if (rotated) {
        // A key rotation: the JWKS now also holds the new key.
        return sendJson(res, 200, { keys: [publicJwk(keys.provider), publicJwk(keys.rotated)] });
      }
    }
    if (path === configuration.routes.token) stats.token += 1;
    if (path === configuration.routes.userinfo) stats.userinfo += 1;
    if (path === configuration.routes.revocation) stats.revocation += 1;
    if (path === configuration.routes.introspection) stats.introspection += 1;
    if (path === configuration.routes.pushed_authorization_request) stats.par += 1;
    if (path === '/.well-known/openid-configuration') stats.discovery += 1;
    return handle(req, res);
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// The parent reads only the first line of stdout and may close it; later
// writes (oidc-provider logs some) must not crash the provider.
process.stdout.on('error', () => {});

// The parent test process holds our stdin; when it exits, so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
