// A member account's half, in each region it uses: rules with the generated patterns, each
// forwarding to the central bus through one role that may put events there and nothing else.

import * as fs from 'node:fs';

import * as cdk from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

import { MEMBER_PATTERNS_FILE } from '../config';

/** EventBridge's limit on one rule's pattern, in characters (the file is split to fit it). */
export const PATTERN_LIMIT = 2048;

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

export interface MemberStackProps extends cdk.StackProps {
  /** ARN of the central bus in the security account. */
  readonly centralBusArn: string;
  readonly patterns: Record<string, unknown>[];
}

export class MemberStack extends cdk.Stack {
  readonly role: iam.Role;
  readonly rules: events.CfnRule[] = [];

  constructor(scope: Construct, id: string, props: MemberStackProps) {
    super(scope, id, props);
    const { account } = cdk.Stack.of(this);

    this.role = new iam.Role(this, 'ForwardRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': account } },
      }),
      description: 'trailwatch: forward matched CloudTrail events to the central bus',
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

    props.patterns.forEach((pattern, i) => {
      // L1: the pattern goes through as generated (`$or`, `exists`, ...), untouched by CDK.
      const rule = new events.CfnRule(this, `Forward${i + 1}`, {
        description: `trailwatch: CloudTrail events matched by the rule pack (part ${i + 1} of ${props.patterns.length})`,
        eventBusName: 'default',
        state: 'ENABLED',
        eventPattern: pattern,
        targets: [{ id: 'CentralBus', arn: props.centralBusArn, roleArn: this.role.roleArn }],
      });
      rule.node.addDependency(policy);
      this.rules.push(rule);
    });
  }
}
