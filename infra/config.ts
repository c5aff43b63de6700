// The one typed configuration of the trailwatch CDK app, and the names the Rust Lambda shares
// with it (environment variables, DynamoDB keys, metric names). Edit `config` for a deployment;
// change the constants only together with the Rust side.

import * as path from 'node:path';

/** Environment variables the Lambda reads: every name in one place. */
export const ENV = {
  table: 'TRAILWATCH_TABLE',
  slackSecretArn: 'TRAILWATCH_SLACK_SECRET_ARN',
  summarizer: 'TRAILWATCH_SUMMARIZER',
  modelId: 'TRAILWATCH_BEDROCK_MODEL_ID',
  accounts: 'TRAILWATCH_ACCOUNTS',
  trustedAccounts: 'TRAILWATCH_TRUSTED_ACCOUNTS',
  lang: 'TRAILWATCH_LANG',
  tz: 'TRAILWATCH_TZ',
  window: 'TRAILWATCH_WINDOW',
  grace: 'TRAILWATCH_GRACE',
  slackChannel: 'TRAILWATCH_SLACK_CHANNEL',
  slackChannels: 'TRAILWATCH_SLACK_CHANNELS',
  log: 'TRAILWATCH_LOG',
  /**
   * Humantime duration (`15m`): an account and region whose last heartbeat (see HEARTBEAT) is
   * older than this is silent: it counts in `SilentSources` and opens an incident. Always set,
   * from `heartbeat.silenceAfter`.
   */
  heartbeatSilence: 'TRAILWATCH_HEARTBEAT_SILENCE',
  /**
   * Optional humantime duration (`24h`): when set, an account and region with no forwarded
   * CloudTrail event for this long is reported. Unset (the variable is absent) unless
   * `heartbeat.quietAfter` is set, because member rules forward matched events only and a
   * quiet account is normal.
   */
  quietAfter: 'TRAILWATCH_QUIET_AFTER',
  /**
   * This deployment's id in every Slack message's metadata (`<account>/<region>/<table>`): the
   * function's "already posted?" check after an unclear answer matches its own messages only,
   * so another deployment posting into the same channel is never taken for this one.
   */
  deployment: 'TRAILWATCH_DEPLOYMENT',
} as const;

/**
 * The heartbeat every member stack (each account and region) sends to the central bus. It is
 * an EventBridge scheduled rule on the member's default bus, so its events reach the Lambda
 * (through the central bus, the stream and the Pipe) as
 * `{"source": "aws.events", "detail-type": "Scheduled Event", "account": "<member account>",
 *   "region": "<member region>", "resources": ["arn:aws:events:<region>:<account>:rule/trailwatch-heartbeat"],
 *   "time": "...", "detail": {}}`.
 * A replayed or late heartbeat carries its original `time`: last-seen must only move forward.
 */
export const HEARTBEAT = {
  /** The member rule's fixed name (an SCP can protect it). */
  ruleName: 'trailwatch-heartbeat',
  source: 'aws.events',
  detailType: 'Scheduled Event',
  /** Matches `resources[0]` of a heartbeat from any partition, region and account. */
  resourcePattern: 'arn:*:events:*:*:rule/trailwatch-heartbeat',
} as const;

/** The DynamoDB key design (README "State"): one table, a sparse index of due windows. */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  dueIndex: 'due',
  dueIndexPartitionKey: 'due_pk',
  dueIndexSortKey: 'due_at',
  /** What the index holds besides its keys (`DUE_INDEX_ATTRIBUTES` in src/adapters/dynamo.rs). */
  dueIndexAttributes: ['acct', 'w_start', 'w_sent', 'state_key', 'state_body', 'state_body_gz', 'state_version'],
  ttlAttribute: 'expires_at',
} as const;

/**
 * What the Lambda does to its table (`src/adapters/dynamo.rs`: GetItem, PutItem, UpdateItem and
 * Query; no transactions). No delete and no batch write: the function cannot erase audit items.
 */
export const TABLE_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
] as const;

/**
 * Counters the Lambda writes as CloudWatch embedded-metric-format lines, with no dimensions
 * (`src/adapters/metrics.rs`; a Rust test checks these names against it).
 */
export const METRICS = {
  namespace: 'trailwatch',
  quarantined: 'Quarantined',
  offlineFallbacks: 'SummaryFallbacks',
  slackFailures: 'SendFailures',
  /** Records the store refused for good (not retryable); they end in the Pipe's DLQ. */
  storeRejected: 'StoreRejected',
  /**
   * Written on every tick: how many account+region pairs have a heartbeat older than
   * `TRAILWATCH_HEARTBEAT_SILENCE` (0 when none). Its alarm treats no data as breaching.
   */
  silentSources: 'SilentSources',
} as const;

/** The payload EventBridge Scheduler sends every minute to flush due windows. */
export const TICK_INPUT = { trailwatch: 'tick' } as const;

/** Where `cargo lambda build --profile dist --arm64 --features cloud` leaves the binary (`bootstrap`). */
export const LAMBDA_ARTIFACT_DIR = path.join(__dirname, '..', 'target', 'lambda', 'trailwatch-lambda');
/** A stand-in used for synth and tests when the binary is not built; never deployed. */
export const LAMBDA_PLACEHOLDER_DIR = path.join(__dirname, 'lambda-placeholder');
/** The member-account rule patterns, from `trailwatch pattern --split 2048`. */
export const MEMBER_PATTERNS_FILE = path.join(__dirname, 'member-patterns.json');

/** Geography prefixes of Bedrock cross-region inference profile ids. */
const PROFILE_PREFIXES = ['global', 'us', 'us-gov', 'eu', 'apac', 'jp', 'au', 'ca'] as const;

export interface BedrockConfig {
  /** A foundation-model id or a cross-region inference profile id (`us.`, `global.`, ...). */
  readonly modelId: string;
  /**
   * For a geographic inference profile: the regions it routes to (the Lambda may invoke the
   * model there, only through that profile). Ignored for a plain model id and for `global.`.
   */
  readonly profileRegions: readonly string[];
}

export interface PipeConfig {
  /** Records per Lambda invocation (1-10,000). */
  readonly batchSize: number;
  /** Seconds the Pipe waits to fill a batch (0-300). */
  readonly batchingWindowSeconds: number;
  /** Retries of a failing batch (halved each time by bisect) before the DLQ (0-10,000). */
  readonly maximumRetryAttempts: number;
  /** Records older than this go to the DLQ instead of being retried (60-604,800 s). */
  readonly maximumRecordAgeSeconds: number;
  /** Concurrent batches per shard (1-10); order per partition key (account) holds either way. */
  readonly parallelizationFactor: number;
}

export interface HeartbeatConfig {
  /** Minutes between two heartbeats of one member stack (`rate(N minutes)`), 1-60. */
  readonly intervalMinutes: number;
  /** Humantime (`15m`): no heartbeat for this long and the account+region is silent; > 2 intervals. */
  readonly silenceAfter: string;
  /** Optional humantime (`24h`): no forwarded CloudTrail event for this long is reported. */
  readonly quietAfter?: string;
}

export interface TrailwatchConfig {
  /** The security account and region that hold the stream, the Lambda and the table. */
  readonly central: { readonly account: string; readonly region: string };
  /**
   * The organisation's management account. A service-managed StackSet never deploys there (and
   * Organizations and SCP changes are logged there), so a member stack is added for it, as for
   * the central account, unless `accounts` already lists it.
   */
  readonly managementAccount?: string;
  /**
   * Who may put events on the central bus: an AWS Organization (`o-...`), or, when absent,
   * exactly the accounts in `accounts`.
   */
  readonly organizationId?: string;
  /** Member account number -> readable name (also the accounts MemberStack is deployed to). */
  readonly accounts: Readonly<Record<string, string>>;
  /** Regions with member rules; us-east-1 is always added (IAM, STS, Organizations live there). */
  readonly memberRegions: readonly string[];
  /**
   * Optional: a service-managed StackSet, deployed from the organisation's management (or a
   * delegated administrator) account, that puts the member rules in every account of these OUs.
   */
  readonly stackSet?: {
    readonly account: string;
    readonly region: string;
    readonly organizationalUnitIds: readonly string[];
    /** `DELEGATED_ADMIN` when deployed from a delegated StackSets administrator (default `SELF`). */
    readonly callAs?: 'SELF' | 'DELEGATED_ADMIN';
  };
  readonly slack: {
    /** Channel for accounts without their own. */
    readonly defaultChannel: string;
    /** Account number -> channel. */
    readonly accountChannels: Readonly<Record<string, string>>;
  };
  readonly bedrock: BedrockConfig;
  /** `en` or `ko`. */
  readonly lang: 'en' | 'ko';
  /** IANA time zone for times in Slack. */
  readonly timeZone: string;
  /** Window width and grace, humantime (`5m`, `2m`). */
  readonly window: string;
  readonly grace: string;
  readonly pipe: PipeConfig;
  readonly lambda: {
    readonly memoryMb: number;
    readonly timeoutSeconds: number;
    /**
     * Concurrent executions reserved for (and capped at) the function: shards x
     * parallelizationFactor for the Pipe, plus overlapping ticks. `'none'` opts out (with a
     * synth warning): AWS keeps 100 of the account's concurrency unreserved, so an account whose
     * limit is low can reserve nothing until the quota is raised.
     */
    readonly reservedConcurrency: number | 'none';
  };
  readonly heartbeat: HeartbeatConfig;
  readonly alarms: {
    /** Alarm when the stream's oldest unread record is older than this. */
    readonly iteratorAgeSeconds: number;
    /**
     * Addresses subscribed to the alarm topics, central and member (they must confirm by mail).
     * At least one: an alarm nobody receives is silence.
     */
    readonly emails: readonly string[];
  };
  /** Days the central bus archive keeps accepted events for replay (>= 14, the DLQs' retention). */
  readonly archiveRetentionDays: number;
  /**
   * Who administers the KMS key (administration only, no encrypt/decrypt). Default: the account
   * (IAM policies decide). When set, the CDK bootstrap's CloudFormation execution role is added,
   * since CloudFormation must be able to update the key policy.
   */
  readonly kmsAdminPrincipalArn?: string;
  /**
   * IAM roles or users of the central account that may use the key through DynamoDB, Secrets
   * Manager, SQS and Kinesis: whoever puts the Slack token, reads the audit table or a
   * dead-letter queue, or puts a record back on the stream. At least one.
   */
  readonly kmsUserPrincipalArns: readonly string[];
  /** Days the Lambda's logs are kept. */
  readonly logRetentionDays: number;
}

/** The deployment's configuration. Replace the example numbers with your own. */
export const config: TrailwatchConfig = {
  central: { account: '123456789012', region: 'us-east-1' },
  organizationId: 'o-a1b2c3d4e5',
  managementAccount: '999999999999',
  accounts: {
    '111111111111': 'prod',
    '222222222222': 'dev',
  },
  memberRegions: ['us-east-1', 'ap-northeast-2'],
  stackSet: {
    account: '123456789012',
    region: 'us-east-1',
    organizationalUnitIds: ['ou-abcd-11111111'],
    callAs: 'SELF',
  },
  slack: {
    defaultChannel: 'C0DEFAULT1',
    accountChannels: { '111111111111': 'C0PROD0001' },
  },
  bedrock: {
    modelId: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0',
    profileRegions: ['us-east-1', 'us-east-2', 'us-west-2'],
  },
  lang: 'ko',
  timeZone: 'Asia/Seoul',
  window: '5m',
  grace: '2m',
  pipe: {
    batchSize: 500,
    batchingWindowSeconds: 5,
    maximumRetryAttempts: 5,
    maximumRecordAgeSeconds: 6 * 3600,
    parallelizationFactor: 1,
  },
  lambda: {
    memoryMb: 512,
    timeoutSeconds: 120,
    // An on-demand stream starts with 4 MB/s of writes, 4 shards, and reads parent and child
    // shards side by side while it reshards: 2 x 4 shards x parallelizationFactor 1, plus 2
    // overlapping ticks (a tick may run up to the 120 s timeout, and one starts every minute).
    reservedConcurrency: 2 * 4 * 1 + 2,
  },
  heartbeat: { intervalMinutes: 5, silenceAfter: '15m' },
  alarms: { iteratorAgeSeconds: 300, emails: ['secops@example.com'] },
  archiveRetentionDays: 30,
  kmsUserPrincipalArns: ['arn:aws:iam::123456789012:role/trailwatch-operator'],
  logRetentionDays: 90,
};

/** A Bedrock id split into the inference profile prefix (if any) and the model id. */
export function parseModelId(modelId: string): { profile?: string; model: string } {
  const dot = modelId.indexOf('.');
  const prefix = dot > 0 ? modelId.slice(0, dot) : '';
  // Model ids are `provider.name`; a profile id adds a geography in front: `us.provider.name`.
  if ((PROFILE_PREFIXES as readonly string[]).includes(prefix) && modelId.indexOf('.', dot + 1) > 0) {
    return { profile: prefix, model: modelId.slice(dot + 1) };
  }
  return { model: modelId };
}

/** `111111111111=prod,222222222222=dev`, as the Lambda reads it. */
export function accountsValue(accounts: Readonly<Record<string, string>>): string {
  return Object.entries(accounts)
    .map(([id, name]) => `${id}=${name}`)
    .join(',');
}

/** `111111111111=C0PROD`, the per-account Slack routing the Lambda reads. */
export function slackChannelsValue(channels: Readonly<Record<string, string>>): string {
  return accountsValue(channels);
}

/** The regions that get member rules: us-east-1 first, then the rest, once each. */
export function memberRegions(cfg: TrailwatchConfig): string[] {
  return [...new Set(['us-east-1', ...cfg.memberRegions])];
}

/** Names for the accounts trailwatch adds on its own when `accounts` does not name them. */
export const ADDED_ACCOUNT_NAMES = { management: 'management', central: 'security' } as const;

/**
 * Every account that gets member stacks, may put events on the central bus and is trusted by
 * the Lambda: the configured accounts, then the management account and the central account
 * (named `management` and `security` unless `accounts` names them).
 */
export function watchedAccounts(cfg: TrailwatchConfig): Record<string, string> {
  const watched: Record<string, string> = { ...cfg.accounts };
  if (cfg.managementAccount !== undefined && !(cfg.managementAccount in watched)) {
    watched[cfg.managementAccount] = ADDED_ACCOUNT_NAMES.management;
  }
  if (!(cfg.central.account in watched)) watched[cfg.central.account] = ADDED_ACCOUNT_NAMES.central;
  return watched;
}

/** Seconds in a humantime duration of one unit (`90s`, `15m`, `2h`); undefined if not one. */
export function durationSeconds(text: string): number | undefined {
  const m = /^(\d+)(s|m|h)$/.exec(text);
  if (m === null) return undefined;
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

/** The heartbeat rule's schedule expression (`rate(1 minute)`, `rate(5 minutes)`). */
export function heartbeatSchedule(cfg: TrailwatchConfig): string {
  const n = cfg.heartbeat.intervalMinutes;
  return `rate(${n} ${n === 1 ? 'minute' : 'minutes'})`;
}

/** Checks what CloudFormation would reject late or what would deploy something wrong. */
export function validateConfig(cfg: TrailwatchConfig): void {
  const problems: string[] = [];
  const accountId = ACCOUNT_ID;
  const names = /^[A-Za-z0-9 _.()-]+$/;
  if (!accountId.test(cfg.central.account)) problems.push(`central.account: ${cfg.central.account}`);
  for (const [id, name] of Object.entries(cfg.accounts)) {
    if (!accountId.test(id)) problems.push(`accounts: ${id} is not a 12-digit account number`);
    if (!names.test(name)) problems.push(`accounts: name ${JSON.stringify(name)} (letters, digits, _ . ( ) - and spaces)`);
  }
  for (const id of Object.keys(cfg.slack.accountChannels)) {
    if (!accountId.test(id)) problems.push(`slack.accountChannels: ${id} is not an account number`);
  }
  if (cfg.organizationId !== undefined && !/^o-[a-z0-9]{10,32}$/.test(cfg.organizationId)) {
    problems.push(`organizationId: ${cfg.organizationId}`);
  }
  if (cfg.organizationId === undefined && Object.keys(cfg.accounts).length === 0) {
    problems.push('accounts: list the member accounts, or set organizationId');
  }
  if (cfg.stackSet !== undefined) {
    if (cfg.organizationId === undefined) problems.push('stackSet: needs organizationId');
    if (cfg.stackSet.organizationalUnitIds.length === 0) problems.push('stackSet.organizationalUnitIds: empty');
  }
  const p = cfg.pipe;
  if (p.batchSize < 1 || p.batchSize > 10000) problems.push(`pipe.batchSize: ${p.batchSize}`);
  if (p.batchingWindowSeconds < 0 || p.batchingWindowSeconds > 300) problems.push(`pipe.batchingWindowSeconds: ${p.batchingWindowSeconds}`);
  if (p.maximumRetryAttempts < 0 || p.maximumRetryAttempts > 10000) problems.push(`pipe.maximumRetryAttempts: ${p.maximumRetryAttempts}`);
  if (p.maximumRecordAgeSeconds < 60 || p.maximumRecordAgeSeconds > 604800) problems.push(`pipe.maximumRecordAgeSeconds: ${p.maximumRecordAgeSeconds}`);
  if (p.parallelizationFactor < 1 || p.parallelizationFactor > 10) problems.push(`pipe.parallelizationFactor: ${p.parallelizationFactor}`);
  if (!/^\d+[smh]$/.test(cfg.window)) problems.push(`window: ${cfg.window}`);
  if (!/^\d+[smh]$/.test(cfg.grace)) problems.push(`grace: ${cfg.grace}`);
  if (cfg.lambda.timeoutSeconds < 1 || cfg.lambda.timeoutSeconds > 900) problems.push(`lambda.timeoutSeconds: ${cfg.lambda.timeoutSeconds}`);
  problems.push(...validateAdditions(cfg));
  if (problems.length > 0) throw new Error(`infra/config.ts is invalid:\n  ${problems.join('\n  ')}`);
}

const ACCOUNT_ID = /^\d{12}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

/** The issue-16 settings: coverage, heartbeat, archive, concurrency, alarms, key principals. */
function validateAdditions(cfg: TrailwatchConfig): string[] {
  const problems: string[] = [];
  if (cfg.managementAccount !== undefined && !ACCOUNT_ID.test(cfg.managementAccount)) {
    problems.push(`managementAccount: ${cfg.managementAccount} is not a 12-digit account number`);
  }
  const callAs = cfg.stackSet?.callAs;
  if (callAs !== undefined && callAs !== 'SELF' && callAs !== 'DELEGATED_ADMIN') problems.push(`stackSet.callAs: ${String(callAs)} (SELF or DELEGATED_ADMIN)`);
  const rc = cfg.lambda.reservedConcurrency;
  if (rc !== 'none' && !(Number.isInteger(rc) && rc >= 1)) problems.push(`lambda.reservedConcurrency: ${String(rc)} (an integer >= 1, or 'none')`);
  const hb = cfg.heartbeat;
  if (!Number.isInteger(hb.intervalMinutes) || hb.intervalMinutes < 1 || hb.intervalMinutes > 60) {
    problems.push(`heartbeat.intervalMinutes: ${hb.intervalMinutes} (1-60)`);
  }
  const silence = durationSeconds(hb.silenceAfter);
  if (silence === undefined) {
    problems.push(`heartbeat.silenceAfter: ${hb.silenceAfter} (a duration such as 15m)`);
  } else if (silence <= 2 * hb.intervalMinutes * 60) {
    problems.push(`heartbeat.silenceAfter: ${hb.silenceAfter} must be longer than two heartbeat intervals (${2 * hb.intervalMinutes}m)`);
  }
  if (hb.quietAfter !== undefined && !(durationSeconds(hb.quietAfter) ?? 0)) {
    problems.push(`heartbeat.quietAfter: ${hb.quietAfter} (a duration such as 24h, or leave it unset)`);
  }
  if (!Number.isInteger(cfg.archiveRetentionDays) || cfg.archiveRetentionDays < 14) {
    problems.push(`archiveRetentionDays: ${cfg.archiveRetentionDays} (an integer >= 14: the archive must outlive the 14 days a dead-letter queue keeps its messages)`);
  }
  if (cfg.alarms.emails.length === 0) {
    problems.push('alarms.emails: empty; list at least one address for the alarm topics (an alarm nobody receives is silence)');
  }
  for (const e of cfg.alarms.emails) if (!EMAIL.test(e)) problems.push(`alarms.emails: ${e} is not an email address`);
  const principal = new RegExp(`^arn:aws[a-z-]*:iam::${cfg.central.account}:(root|(role|user)/[\\w+=,.@/-]+)$`);
  if (cfg.kmsAdminPrincipalArn !== undefined && !principal.test(cfg.kmsAdminPrincipalArn)) {
    problems.push(`kmsAdminPrincipalArn: ${cfg.kmsAdminPrincipalArn} (an IAM role or user ARN of the central account)`);
  }
  if (cfg.kmsUserPrincipalArns.length === 0) {
    problems.push('kmsUserPrincipalArns: empty; name the role that puts the Slack token and reads the audit table (the key trusts no one else)');
  }
  for (const arn of cfg.kmsUserPrincipalArns) {
    if (!principal.test(arn) || arn.endsWith(':root')) problems.push(`kmsUserPrincipalArns: ${arn} (an IAM role or user ARN of the central account)`);
  }
  return problems;
}
