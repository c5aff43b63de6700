// Optional: a service-managed StackSet that deploys the member rules to every account of the
// listed organisational units (and to accounts that join them later), in every member region.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as cdk from 'aws-cdk-lib';
import { Construct } from 'constructs';

import { MemberStack } from './member-stack';

/** What the member template carries besides the patterns. */
export interface MemberTemplateOptions {
  readonly heartbeatSchedule: string;
  readonly alarmEmails: readonly string[];
}

/** The member template, account- and region-agnostic, as the StackSet deploys it. */
export function memberTemplateBody(centralBusArn: string, patterns: Record<string, unknown>[], opts: MemberTemplateOptions): string {
  // A separate app in a scratch directory: its assembly must not land in the main cdk.out.
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'trailwatch-member-'));
  const app = new cdk.App({ analyticsReporting: false, outdir });
  const stack = new MemberStack(app, 'TrailwatchMember', {
    centralBusArn,
    patterns,
    heartbeatSchedule: opts.heartbeatSchedule,
    alarmEmails: opts.alarmEmails,
    synthesizer: new cdk.BootstraplessSynthesizer(),
  });
  try {
    const assembly = app.synth();
    return JSON.stringify(assembly.getStackArtifact(stack.artifactId).template);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

export interface StackSetStackProps extends cdk.StackProps, MemberTemplateOptions {
  readonly centralBusArn: string;
  readonly patterns: Record<string, unknown>[];
  readonly organizationalUnitIds: readonly string[];
  readonly regions: readonly string[];
  /** `DELEGATED_ADMIN` when a delegated StackSets administrator deploys it. */
  readonly callAs: 'SELF' | 'DELEGATED_ADMIN';
}

export class StackSetStack extends cdk.Stack {
  readonly stackSet: cdk.CfnStackSet;

  constructor(scope: Construct, id: string, props: StackSetStackProps) {
    super(scope, id, props);
    const templateBody = memberTemplateBody(props.centralBusArn, props.patterns, props);
    if (templateBody.length > 51200) {
      throw new Error(`the member template has ${templateBody.length} bytes, more than TemplateBody allows (51,200)`);
    }
    this.stackSet = new cdk.CfnStackSet(this, 'MemberStackSet', {
      stackSetName: 'trailwatch-member',
      description: 'trailwatch: forward matched CloudTrail events to the central bus',
      permissionModel: 'SERVICE_MANAGED',
      callAs: props.callAs,
      autoDeployment: { enabled: true, retainStacksOnAccountRemoval: false },
      // The forward role has a fixed name (an SCP protects it), which needs the named capability.
      capabilities: ['CAPABILITY_NAMED_IAM'],
      managedExecution: { Active: true },
      operationPreferences: {
        failureTolerancePercentage: 10,
        maxConcurrentPercentage: 25,
        regionConcurrencyType: 'PARALLEL',
      },
      stackInstancesGroup: [
        {
          deploymentTargets: { organizationalUnitIds: [...props.organizationalUnitIds] },
          regions: [...props.regions],
        },
      ],
      templateBody,
    });
  }
}
