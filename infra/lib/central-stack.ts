// The security account's half: central bus -> Kinesis -> Pipe -> Lambda, the table, the Slack
// secret, Bedrock access, the scheduler tick and the alarms.

import * as fs from 'node:fs';
import * as path from 'node:path';

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
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
  LAMBDA_ARTIFACT_DIR,
  LAMBDA_PLACEHOLDER_DIR,
  METRICS,
  TABLE,
  TABLE_ACTIONS,
  TICK_INPUT,
  TrailwatchConfig,
  accountsValue,
  parseModelId,
  slackChannelsValue,
} from '../config';

/** The name of the central bus; MemberStack targets it by ARN. */
export const CENTRAL_BUS_NAME = 'trailwatch';
export const FUNCTION_NAME = 'trailwatch';
/** The central bus's rule to Kinesis (named, so the key policy can name it without a cycle). */
export const BUS_RULE_NAME = 'trailwatch-to-stream';

function busRuleArn(partition: string, region: string, account: string): string {
  return `arn:${partition}:events:${region}:${account}:rule/${CENTRAL_BUS_NAME}/${BUS_RULE_NAME}`;
}

export function centralBusArn(cfg: TrailwatchConfig): string {
  return `arn:aws:events:${cfg.central.region}:${cfg.central.account}:event-bus/${CENTRAL_BUS_NAME}`;
}

/** The Lambda code: the built binary when present, else the placeholder (see README "Deploy"). */
export function lambdaCodeDir(requireArtifact: boolean, artifactDir: string = LAMBDA_ARTIFACT_DIR): string {
  if (fs.existsSync(path.join(artifactDir, 'bootstrap'))) return artifactDir;
  if (requireArtifact) {
    throw new Error(
      `${path.join(artifactDir, 'bootstrap')} is missing: run \`cargo lambda build --release --arm64\` at the repository root first`,
    );
  }
  return LAMBDA_PLACEHOLDER_DIR;
}

export interface CentralStackProps extends cdk.StackProps {
  readonly config: TrailwatchConfig;
  /** Directory holding `bootstrap`. */
  readonly codeDir: string;
}

export class CentralStack extends cdk.Stack {
  readonly key: kms.Key;
  readonly bus: events.EventBus;
  readonly stream: kinesis.Stream;
  readonly table: dynamodb.Table;
  readonly fn: lambda.Function;
  readonly pipeDlq: sqs.Queue;
  readonly busDlq: sqs.Queue;
  readonly alarmTopic: sns.Topic;
  readonly slackSecret: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: CentralStackProps) {
    super(scope, id, props);
    const cfg = props.config;
    const { account, region, partition } = cdk.Stack.of(this);
    const logGroupName = `/aws/lambda/${FUNCTION_NAME}`;

    // One customer-managed key for every store of event data; services that write on their own
    // (CloudWatch Logs, EventBridge into the DLQ, CloudWatch alarms into SNS) are named below.
    this.key = new kms.Key(this, 'Key', {
      alias: 'alias/trailwatch',
      description: 'trailwatch: stream, queues, table, secret, topic and logs',
      enableKeyRotation: true,
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
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
    // As the EventBridge guide writes it for a DLQ under a customer-managed key: only that rule.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeIntoTheBusDlq',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { ArnEquals: { 'aws:SourceArn': busRuleArn(partition, region, account) } },
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

    // ---- central bus: member accounts put their matched CloudTrail events here.
    this.bus = new events.EventBus(this, 'Bus', { eventBusName: CENTRAL_BUS_NAME });
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
            principals: Object.keys(cfg.accounts).map((id) => new iam.AccountPrincipal(id)),
            actions: ['events:PutEvents'],
            resources: [this.bus.eventBusArn],
          }),
    );

    // ---- bus -> Kinesis, one shard key per account so an account's events stay in order.
    this.stream = new kinesis.Stream(this, 'Stream', {
      streamName: 'trailwatch',
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
    this.busDlq = this.queue('BusDlq', 'trailwatch-bus-dlq');
    const busToStreamRole = new iam.Role(this, 'BusToStreamRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
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
          new iam.PolicyStatement({
            sid: 'EncryptRecords',
            actions: ['kms:GenerateDataKey'],
            resources: [this.key.keyArn],
            conditions: { StringEquals: { 'kms:ViaService': viaServices(region, 'kinesis') } },
          }),
        ],
      }),
    );
    const busRule = new events.Rule(this, 'BusToStream', {
      ruleName: BUS_RULE_NAME,
      eventBus: this.bus,
      description: 'Every CloudTrail-derived event the member rules forward',
      eventPattern: { source: events.Match.prefix('aws.') },
    });
    const busRuleCfn = busRule.node.defaultChild as events.CfnRule;
    busRuleCfn.targets = [
      {
        id: 'Stream',
        arn: this.stream.streamArn,
        roleArn: busToStreamRole.roleArn,
        kinesisParameters: { partitionKeyPath: '$.account' },
        deadLetterConfig: { arn: this.busDlq.queueArn },
        retryPolicy: { maximumEventAgeInSeconds: 24 * 3600, maximumRetryAttempts: 185 },
      },
    ];
    this.busDlq.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLetters',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.busDlq.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': busRule.ruleArn } },
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
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // ---- the Slack token (or webhook URL): set its value after deploy (README "Deploy").
    this.slackSecret = new secretsmanager.Secret(this, 'SlackSecret', {
      secretName: 'trailwatch/slack',
      description: 'Slack bot token (xoxb-...) or incoming-webhook URL for trailwatch',
      encryptionKey: this.key,
    });

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
          new iam.PolicyStatement({
            sid: 'KeyForTableAndSecret',
            // What CDK's own grants give a writer of a table under a customer-managed key.
            actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
            resources: [this.key.keyArn],
            conditions: { StringEquals: { 'kms:ViaService': viaServices(region, 'dynamodb', 'secretsmanager') } },
          }),
          ...bedrockStatements(cfg.bedrock.modelId, model, partition, region, account, cfg.bedrock.profileRegions),
        ],
    });
    fnRole.attachInlinePolicy(fnPolicy);

    this.fn = new lambda.Function(this, 'Function', {
      functionName: FUNCTION_NAME,
      description: 'trailwatch: ingest Pipe batches, flush due windows on the scheduler tick',
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.codeDir),
      memorySize: cfg.lambda.memoryMb,
      timeout: cdk.Duration.seconds(cfg.lambda.timeoutSeconds),
      role: fnRole,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      // Scheduler ticks are invoked asynchronously; a lost tick is superseded a minute later.
      retryAttempts: 0,
      maxEventAge: cdk.Duration.seconds(60),
      environment: {
        [ENV.table]: this.table.tableName,
        [ENV.slackSecretArn]: this.slackSecret.secretArn,
        [ENV.summarizer]: 'bedrock',
        [ENV.modelId]: cfg.bedrock.modelId,
        [ENV.accounts]: accountsValue(cfg.accounts),
        // Events of any other account are quarantined (the envelope's account is checked).
        [ENV.trustedAccounts]: Object.keys(cfg.accounts).join(','),
        [ENV.lang]: cfg.lang,
        [ENV.tz]: cfg.timeZone,
        [ENV.window]: cfg.window,
        [ENV.grace]: cfg.grace,
        [ENV.slackChannel]: cfg.slack.defaultChannel,
        [ENV.slackChannels]: slackChannelsValue(cfg.slack.accountChannels),
        [ENV.log]: 'info',
      },
    });
    if (path.resolve(props.codeDir) === path.resolve(LAMBDA_PLACEHOLDER_DIR)) {
      cdk.Annotations.of(this.fn).addWarningV2(
        'trailwatch:placeholder-code',
        'The Lambda code is the placeholder (it fails every invocation). Build it with `cargo lambda build --release --arm64` and deploy with `npm run deploy`.',
      );
    }
    // The role's policy must exist before the function can run.
    this.fn.node.addDependency(fnPolicy);

    // ---- Kinesis -> Pipe -> Lambda, with bisect, bounded retries and a dead-letter queue.
    this.pipeDlq = this.queue('PipeDlq', 'trailwatch-pipe-dlq');
    const pipeRole = new iam.Role(this, 'PipeRole', {
      assumedBy: new iam.ServicePrincipal('pipes.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
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
        new iam.PolicyStatement({
          sid: 'KeyForStreamAndDlq',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.key.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': viaServices(region, 'kinesis', 'sqs') } },
        }),
      ],
    });
    pipeRole.attachInlinePolicy(pipePolicy);
    const pipe = new pipes.CfnPipe(this, 'Pipe', {
      name: 'trailwatch',
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
    // CloudFormation validates the Pipe's access when it creates it.
    pipe.node.addDependency(pipePolicy);

    // ---- the tick: every minute, flush due windows.
    const tickRole = new iam.Role(this, 'TickRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
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
      name: 'trailwatch-tick',
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
      topicName: 'trailwatch-alarms',
      displayName: 'trailwatch alarms',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of cfg.alarms.emails) {
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    const action = new cwActions.SnsAction(this.alarmTopic);
    const alarm = (id: string, description: string, metric: cloudwatch.IMetric, threshold: number, periods = 1) => {
      const a = new cloudwatch.Alarm(this, id, {
        alarmName: `trailwatch-${id.replace(/Alarm$/, '').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()}`,
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: periods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      return a;
    };
    const fiveMinutes = cdk.Duration.minutes(5);
    alarm(
      'IteratorAgeAlarm',
      'The Pipe is falling behind the stream: events reach Slack late',
      this.stream.metricGetRecordsIteratorAgeMilliseconds({ statistic: 'Maximum', period: cdk.Duration.minutes(1) }),
      cfg.alarms.iteratorAgeSeconds * 1000,
      5,
    );
    alarm(
      'PipeDlqAlarm',
      'Kinesis records the Lambda could not take went to the Pipe dead-letter queue',
      this.pipeDlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: fiveMinutes }),
      1,
    );
    alarm(
      'BusDlqAlarm',
      'Events from the central bus could not be put on the stream',
      this.busDlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: fiveMinutes }),
      1,
    );
    alarm(
      'FunctionErrorsAlarm',
      'The trailwatch Lambda failed (ingest or tick)',
      this.fn.metricErrors({ statistic: 'Sum', period: fiveMinutes }),
      1,
    );
    const custom = (metricName: string) =>
      new cloudwatch.Metric({ namespace: METRICS.namespace, metricName, statistic: 'Sum', period: fiveMinutes });
    alarm(
      'QuarantinedAlarm',
      'Records that could not be decoded were quarantined (kept, redacted, counted)',
      custom(METRICS.quarantined),
      1,
    );
    alarm(
      'OfflineFallbackAlarm',
      'Bedrock failed (throttling, timeout, invalid output): summaries fell back to offline templates',
      custom(METRICS.offlineFallbacks),
      1,
    );
    alarm('SlackFailureAlarm', 'Slack messages failed after retries', custom(METRICS.slackFailures), 1);
    alarm(
      'ThrottlesAlarm',
      'The trailwatch Lambda was throttled: ticks or Pipe batches wait, events reach Slack late',
      this.fn.metricThrottles({ statistic: 'Sum', period: fiveMinutes }),
      1,
    );
    // Silence looks like "nothing happened": the scheduler invokes the function every minute,
    // so no invocation in ten minutes (or no data at all) means nothing is being watched.
    const silence = new cloudwatch.Alarm(this, 'SilenceAlarm', {
      alarmName: 'trailwatch-silence',
      alarmDescription:
        'The trailwatch Lambda was not invoked for 10 minutes: the schedule, the Pipe or the function is stopped, and nothing is watched',
      metric: this.fn.metricInvocations({ statistic: 'Sum', period: fiveMinutes }),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    silence.addAlarmAction(action);
    silence.addOkAction(action);

    new cdk.CfnOutput(this, 'CentralBusArn', { value: this.bus.eventBusArn });
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
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:${this.region}:${this.account}:log-group:/aws/lambda/${FUNCTION_NAME}:log-stream:*]`,
      'Log streams are created by the Lambda runtime with generated names, inside its one log group.',
    );
  }
}

/** A cdk-nag finding acknowledged on one construct, with the reason it is acceptable. */
export function acknowledge(scope: Construct, id: string, reason: string): void {
  cdk.Validations.of(scope).acknowledge({ id: `AwsSolutions::${id}`, reason });
}

/** KMS use only through these services, in this region. */
function viaServices(region: string, ...services: string[]): string[] {
  return services.map((s) => `${s}.${region}.amazonaws.com`);
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
