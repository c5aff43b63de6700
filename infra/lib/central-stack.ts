// The security account's half: central bus (and its archive) -> Kinesis -> Pipe -> Lambda, the
// table, the Slack secret, Bedrock access, the scheduler tick, the key and the alarms.

import * as fs from 'node:fs';
import * as path from 'node:path';

import * as cdk from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as pipes from 'aws-cdk-lib/aws-pipes';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

import {
  ENV,
  HEARTBEAT,
  LAMBDA_ARTIFACT_DIR,
  LAMBDA_PLACEHOLDER_DIR,
  TABLE,
  TABLE_ACTIONS,
  TICK_INPUT,
  TrailwatchConfig,
  accountsValue,
  parseModelId,
  slackChannelsValue,
  watchedAccounts,
} from '../config';
import { addCentralAlarms } from './central-alarms';
import { CENTRAL_NAMES } from './central-names';
import { addKeyAdministration, allowDeployment, allowKeyUse, newKey } from './central-key';
import { detailTypesOf } from './member-stack';
import { acknowledge, allowAlarmsToPublish } from './shared';

export { CENTRAL_NAMES };

/**
 * Retry policy of both central rules (into Kinesis). What fails there is throttling while the
 * on-demand stream scales or a Kinesis outage: 15 minutes of retries ride out the first, and then
 * the event goes to the bus DLQ (alarmed) instead of being retried for EventBridge's default
 * 24 hours before anyone hears of it. It is not lost either way: the archive keeps what the bus
 * accepted. Attempts stay at EventBridge's maximum, 185; the age is what ends retries
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html).
 */
export const CENTRAL_RETRY = { maximumEventAgeInSeconds: 900, maximumRetryAttempts: 185 } as const;

function busRuleArn(partition: string, region: string, account: string, rule: string): string {
  return `arn:${partition}:events:${region}:${account}:rule/${CENTRAL_NAMES.bus}/${rule}`;
}

/** The central bus's ARN; member stacks target it. */
export function centralBusArn(cfg: TrailwatchConfig): string {
  return `arn:aws:events:${cfg.central.region}:${cfg.central.account}:event-bus/${CENTRAL_NAMES.bus}`;
}

/**
 * The central CloudTrail rule's pattern: AWS sources only, and exactly the detail-types the
 * member rules can forward, so events of any other type (`aws.partner/*` ones among them) stay out.
 */
export function cloudTrailPattern(patterns: readonly unknown[]): Record<string, unknown> {
  return { source: [{ prefix: 'aws.' }], 'detail-type': detailTypesOf(patterns) };
}

/** The central heartbeat rule's pattern: the member scheduled rules named trailwatch-heartbeat. */
export function heartbeatPattern(): Record<string, unknown> {
  return {
    source: [HEARTBEAT.source],
    'detail-type': [HEARTBEAT.detailType],
    resources: [{ wildcard: HEARTBEAT.resourcePattern }],
  };
}

/** The Lambda code: the built binary when present, else the placeholder (see README "Deploy"). */
export function lambdaCodeDir(requireArtifact: boolean, artifactDir: string = LAMBDA_ARTIFACT_DIR): string {
  if (fs.existsSync(path.join(artifactDir, 'bootstrap'))) return artifactDir;
  if (requireArtifact) {
    throw new Error(
      `${path.join(artifactDir, 'bootstrap')} is missing: run \`cargo lambda build --profile dist --arm64 --features cloud\` at the repository root first`,
    );
  }
  return LAMBDA_PLACEHOLDER_DIR;
}

export interface CentralStackProps extends cdk.StackProps {
  readonly config: TrailwatchConfig;
  /** Directory holding `bootstrap`. */
  readonly codeDir: string;
  /** The member rules' patterns: the central rule accepts the detail-types they name. */
  readonly patterns: Record<string, unknown>[];
}

export class CentralStack extends cdk.Stack {
  readonly key: kms.Key;
  readonly bus: events.EventBus;
  readonly busRule: events.CfnRule;
  readonly heartbeatRule: events.CfnRule;
  readonly archive: events.CfnArchive;
  readonly stream: kinesis.Stream;
  readonly table: dynamodb.Table;
  readonly fn: lambda.Function;
  readonly pipe: pipes.CfnPipe;
  readonly pipeDlq: sqs.Queue;
  readonly busDlq: sqs.Queue;
  readonly alarmTopic: sns.Topic;
  readonly slackSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: CentralStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const { account, region, partition } = cdk.Stack.of(this);
    const logGroupName = `/aws/lambda/${CENTRAL_NAMES.function}`;
    const ruleArns = [busRuleArn(partition, region, account, CENTRAL_NAMES.busRule), busRuleArn(partition, region, account, CENTRAL_NAMES.heartbeatRule)];

    // One customer-managed key for every store of event data. Its policy (lib/central-key.ts)
    // separates administration from use; users are added below as their roles are made.
    this.key = newKey(this, 'Key');
    addKeyAdministration(this.key, cfg.kmsAdminPrincipalArn);
    allowDeployment(this.key);
    allowKeyUse(
      this.key,
      'OperatorsThroughServices',
      cfg.kmsUserPrincipalArns.map((arn) => new iam.ArnPrincipal(arn)),
      ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey'],
      ['dynamodb', 'secretsmanager', 'sqs', 'kinesis'],
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsForTheLambdaLogGroup',
        principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
        actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncryptFrom', 'kms:ReEncryptTo', 'kms:GenerateDataKey', 'kms:DescribeKey'],
        resources: ['*'],
        conditions: {
          ArnEquals: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:log-group:${logGroupName}`,
          },
        },
      }),
    );
    // As the EventBridge guide writes it for a DLQ under a customer-managed key: only the rules.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeIntoTheBusDlq',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { ArnEquals: { 'aws:SourceArn': ruleArns } },
      }),
    );
    // As the CloudWatch guide writes it for alarms into an encrypted topic (no condition there:
    // alarm actions are not documented to carry a source account or ARN to KMS).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsIntoTheTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
      }),
    );

    // ---- central bus: member accounts put their matched CloudTrail events and heartbeats here.
    this.bus = new events.EventBus(this, 'Bus', { eventBusName: CENTRAL_NAMES.bus });
    const senders = Object.keys(watchedAccounts(cfg));
    this.bus.addToResourcePolicy(
      cfg.organizationId !== undefined
        ? new iam.PolicyStatement({
            sid: 'OrganizationPutEvents',
            principals: [new iam.AnyPrincipal()],
            actions: ['events:PutEvents'],
            resources: [this.bus.eventBusArn],
            conditions: { StringEquals: { 'aws:PrincipalOrgID': cfg.organizationId } },
          })
        : new iam.PolicyStatement({
            sid: 'MemberAccountsPutEvents',
            principals: senders.map((a) => new iam.AccountPrincipal(a)),
            actions: ['events:PutEvents'],
            resources: [this.bus.eventBusArn],
          }),
    );

    // ---- bus -> Kinesis, one shard key per account so an account's events stay in order.
    this.stream = new kinesis.Stream(this, 'Stream', {
      streamName: CENTRAL_NAMES.stream,
      streamMode: kinesis.StreamMode.ON_DEMAND,
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: this.key,
      retentionPeriod: cdk.Duration.hours(24),
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.stream,
      'AwsSolutions-KDS3',
      'A customer-managed key lets the security team own and audit access to CloudTrail-derived data; Kinesis reuses data keys, so the KMS cost is a few requests per shard and consumer every five minutes.',
    );
    this.busDlq = this.queue('BusDlq', CENTRAL_NAMES.busDlq);
    const busToStreamRole = new iam.Role(this, 'BusToStreamRole', {
      // Only EventBridge, for the two central rules (the rule ARN is the source:
      // https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account }, ArnEquals: { 'aws:SourceArn': ruleArns } },
      }),
      description: 'EventBridge puts central-bus events on the trailwatch stream',
    });
    busToStreamRole.attachInlinePolicy(
      new iam.Policy(this, 'BusToStreamPolicy', {
        statements: [
          new iam.PolicyStatement({
            sid: 'PutRecords',
            actions: ['kinesis:PutRecord', 'kinesis:PutRecords'],
            resources: [this.stream.streamArn],
          }),
        ],
      }),
    );
    // A Kinesis producer needs GenerateDataKey on the stream's key
    // (https://docs.aws.amazon.com/streams/latest/dev/permissions-user-key-KMS.html).
    allowKeyUse(this.key, 'RulesWriteTheStream', [busToStreamRole], ['kms:GenerateDataKey'], ['kinesis']);
    const toStream = (): events.CfnRule.TargetProperty => ({
      id: 'Stream',
      arn: this.stream.streamArn,
      roleArn: busToStreamRole.roleArn,
      kinesisParameters: { partitionKeyPath: '$.account' },
      deadLetterConfig: { arn: this.busDlq.queueArn },
      retryPolicy: { ...CENTRAL_RETRY },
    });
    const cloudTrail = cloudTrailPattern(props.patterns);
    this.busRule = new events.CfnRule(this, 'BusToStream', {
      name: CENTRAL_NAMES.busRule,
      eventBusName: this.bus.eventBusName,
      description: 'The CloudTrail event types the member rules forward, from AWS sources only',
      state: 'ENABLED',
      eventPattern: cloudTrail,
      targets: [toStream()],
    });
    this.heartbeatRule = new events.CfnRule(this, 'HeartbeatToStream', {
      name: CENTRAL_NAMES.heartbeatRule,
      eventBusName: this.bus.eventBusName,
      description: 'The member heartbeats (scheduled rules named trailwatch-heartbeat)',
      state: 'ENABLED',
      eventPattern: heartbeatPattern(),
      targets: [toStream()],
    });
    this.busDlq.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLetters',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.busDlq.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': [this.busRule.attrArn, this.heartbeatRule.attrArn] } },
      }),
    );

    // ---- the archive: what the central rules accept, kept for replay after the stream's 24 hours
    // (README "Dead-letter queues and recovery"). Under the project key, as EventBridge documents
    // it for archives (https://docs.aws.amazon.com/eventbridge/latest/userguide/encryption-archives.html).
    this.archive = new events.CfnArchive(this, 'Archive', {
      archiveName: CENTRAL_NAMES.archive,
      description: 'trailwatch: every event the central rules accept, for replay',
      sourceArn: this.bus.eventBusArn,
      eventPattern: { $or: [cloudTrail, heartbeatPattern()] },
      retentionDays: cfg.archiveRetentionDays,
      kmsKeyIdentifier: this.key.keyArn,
    });
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeArchiveDescribeKey',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:DescribeKey'],
        resources: ['*'],
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeArchiveOfTheBus',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:ReEncrypt*'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:EncryptionContext:aws:events:event-bus:arn': this.bus.eventBusArn } },
      }),
    );

    // ---- state: one table, a sparse index of due windows, TTL on events and audit items.
    this.table = new dynamodb.Table(this, 'Table', {
      tableName: 'trailwatch',
      partitionKey: { name: TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      timeToLiveAttribute: TABLE.ttlAttribute,
      deletionProtection: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE.dueIndex,
      partitionKey: { name: TABLE.dueIndexPartitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE.dueIndexSortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...TABLE.dueIndexAttributes],
    });

    // ---- the Slack token (or webhook URL): set its value after deploy (README "Deploy"). The key
    // is set on the CloudFormation resource: the construct's encryptionKey would also grant the
    // whole account use of the key through Secrets Manager, which the key policy does not want.
    this.slackSecret = new secretsmanager.Secret(this, 'SlackSecret', {
      secretName: 'trailwatch/slack',
      description: 'Slack bot token (xoxb-...) or incoming-webhook URL for trailwatch',
    });
    (this.slackSecret.node.defaultChild as secretsmanager.CfnSecret).kmsKeyId = this.key.keyArn;

    // ---- the Lambda.
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      logGroupName,
      retention: retentionDays(cfg.logRetentionDays),
      encryptionKey: this.key,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    const fnRole = new iam.Role(this, 'FunctionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'trailwatch Lambda: table, Slack secret, Bedrock model, its own logs',
    });
    const model = parseModelId(cfg.bedrock.modelId);
    const fnPolicy = new iam.Policy(this, 'FunctionPolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'Logs',
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [`arn:${partition}:logs:${region}:${account}:log-group:${logGroupName}:log-stream:*`],
        }),
        new iam.PolicyStatement({
          sid: 'Table',
          actions: [...TABLE_ACTIONS],
          resources: [this.table.tableArn, `${this.table.tableArn}/index/${TABLE.dueIndex}`],
        }),
        new iam.PolicyStatement({
          sid: 'SlackSecret',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [this.slackSecret.secretArn],
        }),
        // The organisation's accounts, read every hour so that a share with an account added
        // after this deploy is not reported as leaving the organisation. Allowed only if this
        // is the management account or a delegated administrator; refused otherwise, and the
        // function keeps the configured accounts.
        new iam.PolicyStatement({
          sid: 'OrganizationAccounts',
          actions: ['organizations:ListAccounts'],
          resources: ['*'],
        }),
        ...bedrockStatements(cfg.bedrock.modelId, model, partition, region, account, cfg.bedrock.profileRegions),
      ],
    });
    fnRole.attachInlinePolicy(fnPolicy);
    // What CDK's own grants give a writer of a table under a customer-managed key, and a reader
    // of the secret, in the key policy (an IAM statement could not grant it).
    allowKeyUse(this.key, 'FunctionThroughTableAndSecret', [fnRole], ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'], ['dynamodb', 'secretsmanager']);

    const watched = watchedAccounts(cfg);
    const environment: Record<string, string> = {
      [ENV.table]: this.table.tableName,
      [ENV.slackSecretArn]: this.slackSecret.secretArn,
      [ENV.summarizer]: 'bedrock',
      [ENV.modelId]: cfg.bedrock.modelId,
      [ENV.accounts]: accountsValue(watched),
      // Events of any other account are quarantined (the envelope's account is checked).
      [ENV.trustedAccounts]: Object.keys(watched).join(','),
      [ENV.lang]: cfg.lang,
      [ENV.tz]: cfg.timeZone,
      [ENV.window]: cfg.window,
      [ENV.grace]: cfg.grace,
      [ENV.slackChannel]: cfg.slack.defaultChannel,
      [ENV.slackChannels]: slackChannelsValue(cfg.slack.accountChannels),
      // The function's default: info, without the AWS SDK's credential-chain warnings.
      [ENV.log]: 'info,aws_config=error,aws_smithy_runtime=error',
      [ENV.heartbeatSilence]: cfg.heartbeat.silenceAfter,
      [ENV.deployment]: `${account}/${region}/${this.table.tableName}`,
    };
    if (cfg.heartbeat.quietAfter !== undefined) environment[ENV.quietAfter] = cfg.heartbeat.quietAfter;
    const reserved = cfg.lambda.reservedConcurrency;
    this.fn = new lambda.Function(this, 'Function', {
      functionName: CENTRAL_NAMES.function,
      description: 'trailwatch: ingest Pipe batches, flush due windows on the scheduler tick',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: cfg.lambda.memoryMb,
      timeout: cdk.Duration.seconds(cfg.lambda.timeoutSeconds),
      // Reserved: other functions cannot starve this one, and it cannot take the account's pool.
      reservedConcurrentExecutions: reserved === 'none' ? undefined : reserved,
      role: fnRole,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // Scheduler ticks are invoked asynchronously; a lost tick is superseded a minute later.
      retryAttempts: 0,
      maxEventAge: cdk.Duration.seconds(60),
      environment,
    });
    if (reserved === 'none') {
      cdk.Annotations.of(this.fn).addWarningV2(
        'trailwatch:no-reserved-concurrency',
        'lambda.reservedConcurrency is none: the trailwatch Lambda has NO reserved concurrency. Any other function in this account can starve it, and then ticks and Pipe batches are throttled (the throttle alarm fires). Reserve concurrency once the account quota allows it (AWS keeps 100 unreserved).',
      );
    }
    if (path.resolve(props.codeDir) === path.resolve(LAMBDA_PLACEHOLDER_DIR)) {
      cdk.Annotations.of(this.fn).addWarningV2(
        'trailwatch:placeholder-code',
        'The Lambda code is the placeholder (it fails every invocation). Build it with `cargo lambda build --profile dist --arm64 --features cloud` and deploy with `npm run deploy`.',
      );
    }
    // The role's policy must exist before the function can run.
    this.fn.node.addDependency(fnPolicy);

    // ---- Kinesis -> Pipe -> Lambda, with bisect, bounded retries and a dead-letter queue.
    this.pipeDlq = this.queue('PipeDlq', CENTRAL_NAMES.pipeDlq);
    const pipeRole = new iam.Role(this, 'PipeRole', {
      // Only EventBridge Pipes, for this one pipe.
      assumedBy: new iam.ServicePrincipal('pipes.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnEquals: { 'aws:SourceArn': `arn:${partition}:pipes:${region}:${account}:pipe/${CENTRAL_NAMES.pipe}` },
        },
      }),
      description: 'EventBridge Pipe: read the trailwatch stream, invoke the Lambda, dead-letter',
    });
    const pipePolicy = new iam.Policy(this, 'PipePolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'ReadStream',
          actions: [
            'kinesis:DescribeStream',
            'kinesis:DescribeStreamSummary',
            'kinesis:GetRecords',
            'kinesis:GetShardIterator',
            'kinesis:ListShards',
            'kinesis:ListStreams',
            'kinesis:SubscribeToShard',
          ],
          resources: [this.stream.streamArn],
        }),
        new iam.PolicyStatement({
          sid: 'InvokeFunction',
          actions: ['lambda:InvokeFunction'],
          resources: [this.fn.functionArn],
        }),
        new iam.PolicyStatement({
          sid: 'DeadLetter',
          actions: ['sqs:SendMessage'],
          resources: [this.pipeDlq.queueArn],
        }),
      ],
    });
    pipeRole.attachInlinePolicy(pipePolicy);
    // A Kinesis consumer needs Decrypt, an SQS sender GenerateDataKey and Decrypt.
    allowKeyUse(this.key, 'PipeReadsStreamWritesDlq', [pipeRole], ['kms:Decrypt', 'kms:GenerateDataKey'], ['kinesis', 'sqs']);
    this.pipe = new pipes.CfnPipe(this, 'Pipe', {
      name: CENTRAL_NAMES.pipe,
      description: 'trailwatch stream -> Lambda (bare JSON array of Kinesis records)',
      roleArn: pipeRole.roleArn,
      source: this.stream.streamArn,
      sourceParameters: {
        kinesisStreamParameters: {
          startingPosition: 'TRIM_HORIZON',
          batchSize: cfg.pipe.batchSize,
          maximumBatchingWindowInSeconds: cfg.pipe.batchingWindowSeconds,
          maximumRetryAttempts: cfg.pipe.maximumRetryAttempts,
          maximumRecordAgeInSeconds: cfg.pipe.maximumRecordAgeSeconds,
          onPartialBatchItemFailure: 'AUTOMATIC_BISECT',
          parallelizationFactor: cfg.pipe.parallelizationFactor,
          deadLetterConfig: { arn: this.pipeDlq.queueArn },
        },
      },
      target: this.fn.functionArn,
      targetParameters: {
        lambdaFunctionParameters: { invocationType: 'REQUEST_RESPONSE' },
      },
    });
    // CloudFormation validates the Pipe's access when it creates it: its policy and the key.
    this.pipe.node.addDependency(pipePolicy, this.key);

    // ---- the tick: every minute, flush due windows.
    const tickRole = new iam.Role(this, 'TickRole', {
      // Only EventBridge Scheduler, for schedules of the tick's group: the schedule group is the
      // source Scheduler names (https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html).
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnEquals: { 'aws:SourceArn': `arn:${partition}:scheduler:${region}:${account}:schedule-group/${CENTRAL_NAMES.tickGroup}` },
        },
      }),
      description: 'EventBridge Scheduler invokes the trailwatch Lambda every minute',
    });
    const tickPolicy = new iam.Policy(this, 'TickPolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'InvokeFunction',
          actions: ['lambda:InvokeFunction'],
          resources: [this.fn.functionArn],
        }),
      ],
    });
    tickRole.attachInlinePolicy(tickPolicy);
    const tick = new scheduler.CfnSchedule(this, 'Tick', {
      name: CENTRAL_NAMES.tick,
      description: 'Flush trailwatch windows that are due',
      scheduleExpression: 'rate(1 minute)',
      flexibleTimeWindow: { mode: 'OFF' },
      state: 'ENABLED',
      target: {
        arn: this.fn.functionArn,
        roleArn: tickRole.roleArn,
        input: JSON.stringify(TICK_INPUT),
        // A missed tick is harmless: the next one, a minute later, flushes the same windows.
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 60 },
      },
    });
    tick.node.addDependency(tickPolicy);

    // ---- alarms -> SNS.
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: CENTRAL_NAMES.topic,
      displayName: 'trailwatch alarms',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of cfg.alarms.emails) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    allowAlarmsToPublish(this.alarmTopic);
    addCentralAlarms(this, cfg);

    new cdk.CfnOutput(this, 'CentralBusArn', { value: this.bus.eventBusArn });
    new cdk.CfnOutput(this, 'ArchiveArn', { value: this.archive.attrArn });
    new cdk.CfnOutput(this, 'SlackSecretArn', { value: this.slackSecret.secretArn });
    new cdk.CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topicArn });

    this.acknowledgeNagFindings(fnPolicy);
  }

  /** An SQS dead-letter queue: KMS, TLS only, kept for the longest SQS allows. */
  private queue(id: string, queueName: string): sqs.Queue {
    const q = new sqs.Queue(this, id, {
      queueName,
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: cdk.Duration.days(14),
    });
    acknowledge(q, 'AwsSolutions-SQS3', 'This queue is itself a dead-letter queue; its depth is alarmed.');
    return q;
  }

  private acknowledgeNagFindings(fnPolicy: iam.Policy): void {
    acknowledge(
      this.slackSecret,
      'AwsSolutions-SMG4',
      'A Slack bot token or webhook URL is rotated in Slack, not by a rotation Lambda; the operator puts the new value.',
    );
    acknowledge(
      fnPolicy,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:${this.region}:${this.account}:log-group:/aws/lambda/${CENTRAL_NAMES.function}:log-stream:*]`,
      'Log streams are created by the Lambda runtime with generated names, inside its one log group.',
    );
    acknowledge(
      fnPolicy,
      'AwsSolutions-IAM5[Resource::*]',
      'organizations:ListAccounts supports no resource-level permission (Service Authorization Reference, AWS Organizations); it only lists the account ids and names.',
    );
  }
}

function retentionDays(days: number): logs.RetentionDays {
  const known = Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number');
  if (!known.includes(days)) throw new Error(`logRetentionDays: ${days} is not a CloudWatch Logs retention`);
  return days as logs.RetentionDays;
}

/**
 * Bedrock: InvokeModel (Converse uses it) on the configured model only. For an inference
 * profile: the profile, plus the model in the regions it routes to, only through that profile.
 */
function bedrockStatements(
  modelId: string,
  model: { profile?: string; model: string },
  partition: string,
  region: string,
  account: string,
  profileRegions: readonly string[],
): iam.PolicyStatement[] {
  const actions = ['bedrock:InvokeModel'];
  if (model.profile === undefined) {
    return [
      new iam.PolicyStatement({
        sid: 'BedrockModel',
        actions,
        resources: [`arn:${partition}:bedrock:${region}::foundation-model/${model.model}`],
      }),
    ];
  }
  const profileArn = `arn:${partition}:bedrock:${region}:${account}:inference-profile/${modelId}`;
  const modelArns =
    model.profile === 'global'
      ? [`arn:${partition}:bedrock:${region}::foundation-model/${model.model}`, `arn:${partition}:bedrock:::foundation-model/${model.model}`]
      : [...new Set([region, ...profileRegions])].map((r) => `arn:${partition}:bedrock:${r}::foundation-model/${model.model}`);
  return [
    new iam.PolicyStatement({ sid: 'BedrockInferenceProfile', actions, resources: [profileArn] }),
    new iam.PolicyStatement({
      sid: 'BedrockModelThroughProfile',
      actions,
      resources: modelArns,
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    }),
  ];
}
