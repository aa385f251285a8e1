// The one error type of dnslb: a stable code, a message for people, and the wrapped cause.
// Every code is listed in docs/errors.md; src/shared/errors.test.ts fails when the two drift apart.

export const ERROR_CODES = [
  // topology
  'TOPOLOGY_YAML',
  'TOPOLOGY_SCHEMA',
  'TOPOLOGY_DUPLICATE_FQDN',
  'TOPOLOGY_DUPLICATE_IP',
  'TOPOLOGY_DUPLICATE_SERVER',
  'TOPOLOGY_WEB_SERVICES_OVERRIDE',
  'TOPOLOGY_EDGE_LOAD_BALANCING',
  'TOPOLOGY_POOL_RECORD',
  'TOPOLOGY_NO_SERVERS',
  'TOPOLOGY_OUTSIDE_ZONE',
  'TOPOLOGY_BAD_FQDN',
  'TOPOLOGY_BAD_ADDRESS',
  'TOPOLOGY_UNKNOWN_REFERENCE',
  'TOPOLOGY_MISSING_VIP',
  'TOPOLOGY_DUPLICATE_NAME',
  'TOPOLOGY_EDGE_REQUIRED',
  'TOPOLOGY_KEY_NOT_ALLOWED',
  'TOPOLOGY_WEB_SERVICES_PORT',
  'TOPOLOGY_HLB',
  'TOPOLOGY_BAD_RECORD',
  'TOPOLOGY_CNAME_CONFLICT',
  'TOPOLOGY_BAD_PATTERN',
  'TOPOLOGY_POOL_KIND',
  'TOPOLOGY_UNREACHABLE_RULE',
  'TOPOLOGY_ROUTE_OVERLAP',
  'TOPOLOGY_NO_GATEWAY',
  'TOPOLOGY_FEDERATION',
  'TOPOLOGY_TOO_LARGE',
  'TOPOLOGY_INVALID',
  'TOPOLOGY_FILE',
  // store
  'STORE_STALE_VERSION',
  'STORE_NOT_FOUND',
  'STORE_CORRUPT',
  'STORE_IO',
  'STORE_LOCKED',
  'STORE_UNKNOWN_SERVER',
  'STORE_TOO_LARGE',
  'STORE_UNAVAILABLE',
  'STORE_USER_EXISTS',
  'STORE_UNKNOWN_USER',
  'STORE_UNKNOWN_POOL',
  'STORE_BAD_USER',
  // client
  'CLIENT_DISCOVERY',
  'CLIENT_CONNECT',
  'CLIENT_REGISTER',
  'CLIENT_TIMEOUT',
  'CLIENT_FLOW',
  'CLIENT_CALL',
  // admin
  'ADMIN_CREDENTIALS',
  'ADMIN_NOT_RUNNING',
  'ADMIN_UNAUTHORIZED',
  'ADMIN_BAD_REQUEST',
  'ADMIN_NOT_FOUND',
  'ADMIN_METHOD',
  'ADMIN_QUORUM',
  'ADMIN_INTERNAL',
  'ADMIN_METRICS_LISTEN',
  'ADMIN_LISTEN',
  // supervisor
  'SUPERVISOR_CHILD',
  'SUPERVISOR_START',
  // webservices
  'WEBSERVICES_NO_POOL',
  'WEBSERVICES_LISTEN',
  // hlb
  'HLB_CONFIG',
  'HLB_RUNTIME',
  // registrar
  'REGISTRAR_BAD_URI',
  'REGISTRAR_REGINFO_PARSE',
  'REGISTRAR_REHOME_CANCELLED',
  // dns
  'DNS_LISTEN',
  'DNS_TSIG',
  'DNS_PUSH',
  // sip
  'SIP_PARSE',
  'SIP_VERSION',
  'SIP_URI_SCHEME',
  'SIP_FRAMING',
  'SIP_TOO_LARGE',
  'SIP_BAD_EXTENSION',
  'SIP_FLOW_CLOSED',
  'SIP_CONNECT',
  'SIP_LISTEN',
  'SIP_CERTIFICATE',
  // frontend
  'FRONTEND_UNKNOWN_SERVER',
  'FRONTEND_TLS',
  'FRONTEND_PEER_UNKNOWN',
  'FRONTEND_NO_TOPOLOGY',
  'FRONTEND_AUTH_NO_DIRECTORY',
  // edge
  'EDGE_NO_ACCESS_EDGE',
  // auth
  'AUTH_HEADER',
  'AUTH_USERS_FILE',
  'AUTH_PASSWORD',
  // cli
  'CLI_USAGE',
  'CLI_BAD_INPUT',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class DnslbError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'DnslbError';
  }
}

export function isDnslbError(value: unknown, code?: ErrorCode): value is DnslbError {
  return value instanceof DnslbError && (code === undefined || value.code === code);
}
