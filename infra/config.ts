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
} as const;

/** The DynamoDB key design (README "State"): one table, a sparse index of due windows. */
export const TABLE = {
  partitionKey: 'pk',
  sortKey: 'sk',
  dueIndex: 'due',
  dueIndexPartitionKey: 'due_pk',
  dueIndexSortKey: 'due_at',
  ttlAttribute: 'expires_at',
} as const;

/**
 * What the Lambda may do to the table: conditional single-item writes and transactions (which
 * IAM checks per item action), reads and index queries. No Scan, no table administration.
 */
/**
 * What the Lambda does to its table (`src/adapters/dynamo.rs`: GetItem, PutItem, UpdateItem,
 * Query, and TransactWriteItems, whose parts need Put/Update/ConditionCheck). No delete and no
 * batch write: the function cannot erase audit items.
 */
export const TABLE_ACTIONS = [
  'dynamodb:ConditionCheckItem',
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
} as const;

/** The payload EventBridge Scheduler sends every minute to flush due windows. */
export const TICK_INPUT = { trailwatch: 'tick' } as const;

/** Where `cargo lambda build --release --arm64` leaves the binary (`bootstrap`). */
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

export interface TrailwatchConfig {
  /** The security account and region that hold the stream, the Lambda and the table. */
  readonly central: { readonly account: string; readonly region: string };
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
  readonly lambda: { readonly memoryMb: number; readonly timeoutSeconds: number };
  readonly alarms: {
    /** Alarm when the stream's oldest unread record is older than this. */
    readonly iteratorAgeSeconds: number;
    /** Addresses subscribed to the alarm topic (they must confirm by mail). */
    readonly emails: readonly string[];
  };
  /** Days the Lambda's logs are kept. */
  readonly logRetentionDays: number;
}

/** The deployment's configuration. Replace the example numbers with your own. */
export const config: TrailwatchConfig = {
  central: { account: '123456789012', region: 'us-east-1' },
  organizationId: 'o-a1b2c3d4e5',
  accounts: {
    '111111111111': 'prod',
    '222222222222': 'dev',
  },
  memberRegions: ['us-east-1', 'ap-northeast-2'],
  stackSet: {
    account: '123456789012',
    region: 'us-east-1',
    organizationalUnitIds: ['ou-abcd-11111111'],
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
  lambda: { memoryMb: 512, timeoutSeconds: 120 },
  alarms: { iteratorAgeSeconds: 300, emails: [] },
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

/** Checks what CloudFormation would reject late or what would deploy something wrong. */
export function validateConfig(cfg: TrailwatchConfig): void {
  const problems: string[] = [];
  const accountId = /^\d{12}$/;
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
  if (problems.length > 0) throw new Error(`infra/config.ts is invalid:\n  ${problems.join('\n  ')}`);
}
