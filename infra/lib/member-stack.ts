// A member account's half, in each region it uses: rules with the generated patterns and a
// heartbeat, each forwarding to the central bus through one role that may put events there and
// nothing else; a dead-letter queue for what cannot be forwarded, alarmed in the account itself.
// Every name is fixed so that an SCP can protect them (README "Protecting trailwatch").

import * as fs from 'node:fs';

import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

import { HEARTBEAT, MEMBER_PATTERNS_FILE } from '../config';
import { acknowledge, allowAlarmsToPublish, checkovSkip, topicAlarm } from './shared';

/** EventBridge's limit on one rule's pattern, in characters (the file is split to fit it). */
export const PATTERN_LIMIT = 2048;

/** Fixed names in every member account and region. */
export const MEMBER_NAMES = {
  /** Forwarding rule n (1-based) is `trailwatch-forward-<n>`. */
  forwardRulePrefix: 'trailwatch-forward-',
  heartbeatRule: HEARTBEAT.ruleName,
  /** Every member rule name matches this (the role trust and the SCP use it). */
  ruleWildcard: 'trailwatch-*',
  /** Role names are account-wide, so the region is part of it: `trailwatch-forward-<region>`. */
  rolePrefix: 'trailwatch-forward-',
  dlq: 'trailwatch-forward-dlq',
  topic: 'trailwatch-member-alarms',
  dlqAlarm: 'trailwatch-forward-dlq',
} as const;

/**
 * Retry policy of every member target. The central bus refuses an event for good when its policy
 * no longer admits this account or the bus is gone; EventBridge sends such permission and
 * missing-resource failures to the dead-letter queue without retrying
 * (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html). What is left is
 * throttling and outages: an hour of retries rides those out, then the event waits in the DLQ
 * (alarmed in this account) instead of being retried for EventBridge's default 24 hours with
 * nobody told. The attempts stay at EventBridge's maximum, 185: the age is what ends retries.
 */
export const MEMBER_RETRY = { maximumEventAgeInSeconds: 3600, maximumRetryAttempts: 185 } as const;

/** The patterns in `infra/member-patterns.json`, checked: a non-empty array of objects. */
export function loadMemberPatterns(file: string = MEMBER_PATTERNS_FILE): Record<string, unknown>[] {
  const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new Error(`${file}: expected a non-empty JSON array of event patterns`);
  }
  return parsed.map((p, i) => {
    if (typeof p !== 'object' || p === null || Array.isArray(p)) {
      throw new Error(`${file}: element ${i} is not an event pattern object`);
    }
    const size = JSON.stringify(p).length;
    if (size > PATTERN_LIMIT) {
      throw new Error(`${file}: pattern ${i} has ${size} characters, more than ${PATTERN_LIMIT}`);
    }
    return p as Record<string, unknown>;
  });
}

/**
 * Every `detail-type` value anywhere in the patterns (inside `$or` too), sorted: what the member
 * rules can forward, so the central rule accepts exactly these. Each must be a plain string.
 */
export function detailTypesOf(patterns: readonly unknown[]): string[] {
  const found = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'detail-type') {
        for (const v of Array.isArray(value) ? value : [value]) {
          if (typeof v !== 'string') throw new Error(`member patterns: detail-type ${JSON.stringify(v)} is not an exact value`);
          found.add(v);
        }
      } else {
        walk(value);
      }
    }
  };
  walk(patterns);
  if (found.size === 0) throw new Error('member patterns: no detail-type, so the central rule would accept nothing');
  return [...found].sort();
}

export interface MemberStackProps extends cdk.StackProps {
  /** ARN of the central bus in the security account. */
  readonly centralBusArn: string;
  readonly patterns: Record<string, unknown>[];
  /** `rate(5 minutes)`: how often the heartbeat rule fires. */
  readonly heartbeatSchedule: string;
  /** Addresses subscribed to this account's alarm topic. */
  readonly alarmEmails: readonly string[];
}

export class MemberStack extends cdk.Stack {
  readonly role: iam.Role;
  readonly rules: events.CfnRule[] = [];
  readonly heartbeat: events.CfnRule;
  readonly dlq: sqs.Queue;
  readonly alarmTopic: sns.Topic;
  readonly dlqAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: MemberStackProps) {
    super(scope, id, props);
    const { account, region, partition } = cdk.Stack.of(this);
    const ruleArn = (name: string) => `arn:${partition}:events:${region}:${account}:rule/${name}`;

    this.role = new iam.Role(this, 'ForwardRole', {
      roleName: `${MEMBER_NAMES.rolePrefix}${region}`,
      // Only EventBridge, for this account's trailwatch rules (the rule ARN is the source:
      // https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': account },
          ArnLike: { 'aws:SourceArn': ruleArn(MEMBER_NAMES.ruleWildcard) },
        },
      }),
      description: 'trailwatch: forward matched CloudTrail events and heartbeats to the central bus',
    });
    const policy = new iam.Policy(this, 'ForwardPolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'PutEventsOnCentralBus',
          actions: ['events:PutEvents'],
          resources: [props.centralBusArn],
        }),
      ],
    });
    this.role.attachInlinePolicy(policy);

    // What cannot be forwarded: the event itself, as the message body (EventBridge adds the
    // error, rule and target as message attributes). SQS-managed encryption: EventBridge can
    // write to it with no key policy, and a customer-managed key per account and region would
    // cost more than the events it protects.
    this.dlq = new sqs.Queue(this, 'ForwardDlq', {
      queueName: MEMBER_NAMES.dlq,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: cdk.Duration.days(14),
    });
    acknowledge(this.dlq, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the member rules; its depth is alarmed.');
    checkovSkip(
      this.dlq.node.defaultChild as cdk.CfnResource,
      'CKV_AWS_27',
      'Encrypted at rest with SQS-managed server-side encryption (SqsManagedSseEnabled); the check recognises only a KMS key, and a customer-managed key in every member account and region would cost more than the dead letters it protects.',
    );

    const target = (): events.CfnRule.TargetProperty => ({
      id: 'CentralBus',
      arn: props.centralBusArn,
      roleArn: this.role.roleArn,
      deadLetterConfig: { arn: this.dlq.queueArn },
      retryPolicy: { ...MEMBER_RETRY },
    });
    props.patterns.forEach((pattern, i) => {
      // L1: the pattern goes through as generated (`$or`, `exists`, ...), untouched by CDK.
      const rule = new events.CfnRule(this, `Forward${i + 1}`, {
        name: `${MEMBER_NAMES.forwardRulePrefix}${i + 1}`,
        description: `trailwatch: CloudTrail events matched by the rule pack (part ${i + 1} of ${props.patterns.length})`,
        eventBusName: 'default',
        state: 'ENABLED',
        eventPattern: pattern,
        targets: [target()],
      });
      rule.node.addDependency(policy);
      this.rules.push(rule);
    });

    // The heartbeat: the central side knows this account and region are still forwarding.
    this.heartbeat = new events.CfnRule(this, 'Heartbeat', {
      name: MEMBER_NAMES.heartbeatRule,
      description: 'trailwatch: heartbeat to the central bus (silence there means this account and region stopped forwarding)',
      eventBusName: 'default',
      state: 'ENABLED',
      scheduleExpression: props.heartbeatSchedule,
      targets: [target()],
    });
    this.heartbeat.node.addDependency(policy);

    this.dlq.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'EventBridgeDeadLetters',
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.dlq.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': [...this.rules, this.heartbeat].map((r) => r.attrArn) } },
      }),
    );

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      topicName: MEMBER_NAMES.topic,
      displayName: 'trailwatch member alarms',
      enforceSSL: true,
    });
    for (const email of props.alarmEmails) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));
    allowAlarmsToPublish(this.alarmTopic);
    // CloudWatch alarms need a customer-managed key to publish to an encrypted topic
    // (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
    const topicReason =
      'The topic carries alarm state changes only (alarm and queue names, no event data). The AWS-managed SNS key cannot be used by CloudWatch alarms, and a customer-managed key in every member account and region would cost more than the topic.';
    acknowledge(this.alarmTopic, 'AwsSolutions-SNS2', topicReason);
    checkovSkip(this.alarmTopic.node.defaultChild as cdk.CfnResource, 'CKV_AWS_26', topicReason);

    // An empty, untouched queue publishes no metrics (SQS reports only for active queues:
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html),
    // so no data means nothing was dead-lettered.
    this.dlqAlarm = topicAlarm(this, 'ForwardDlqAlarm', this.alarmTopic, {
      name: MEMBER_NAMES.dlqAlarm,
      description: 'Events (or heartbeats) this account could not forward to the trailwatch central bus are in trailwatch-forward-dlq',
      metric: this.dlq.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: cdk.Duration.minutes(5) }),
      threshold: 1,
      comparison: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      periods: 1,
      missing: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
