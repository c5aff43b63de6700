// Builds the whole app from the configuration: used by bin/app.ts and by the tests.

import * as cdk from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

import { TrailwatchConfig, heartbeatSchedule, memberRegions, validateConfig, watchedAccounts } from '../config';
import { CentralStack, centralBusArn } from './central-stack';
import { MemberStack, loadMemberPatterns } from './member-stack';
import { StackSetStack } from './stackset-stack';

export interface TrailwatchApp {
  readonly app: cdk.App;
  readonly central: CentralStack;
  readonly members: MemberStack[];
  readonly stackSet?: StackSetStack;
}

export interface BuildOptions {
  /** Directory holding the Lambda's `bootstrap`. */
  readonly codeDir: string;
  /** Patterns for the member rules (default: infra/member-patterns.json). */
  readonly patterns?: Record<string, unknown>[];
  readonly app?: cdk.App;
}

/** Stack id of the member stack for one account and region. */
export function memberStackId(account: string, region: string): string {
  return `TrailwatchMember-${account}-${region}`;
}

export function buildApp(cfg: TrailwatchConfig, opts: BuildOptions): TrailwatchApp {
  validateConfig(cfg);
  const app = opts.app ?? new cdk.App();
  cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  const patterns = opts.patterns ?? loadMemberPatterns();
  const busArn = centralBusArn(cfg);
  const tags = { project: 'trailwatch' };

  const central = new CentralStack(app, 'TrailwatchCentral', {
    env: cfg.central,
    config: cfg,
    codeDir: opts.codeDir,
    patterns,
    description: 'trailwatch central: bus, stream, pipe, Lambda, table, secret, alarms',
    tags,
  });

  const regions = memberRegions(cfg);
  const memberOptions = { heartbeatSchedule: heartbeatSchedule(cfg), alarmEmails: cfg.alarms.emails };
  const members: MemberStack[] = [];
  // The configured accounts, the management account (a service-managed StackSet never deploys
  // there) and the central account itself.
  for (const account of Object.keys(watchedAccounts(cfg))) {
    for (const region of regions) {
      members.push(
        new MemberStack(app, memberStackId(account, region), {
          env: { account, region },
          centralBusArn: busArn,
          patterns,
          ...memberOptions,
          description: `trailwatch member ${account} ${region}: forward matched CloudTrail events and a heartbeat to the central bus`,
          tags,
        }),
      );
    }
  }

  const stackSet =
    cfg.stackSet === undefined
      ? undefined
      : new StackSetStack(app, 'TrailwatchMemberStackSet', {
          env: { account: cfg.stackSet.account, region: cfg.stackSet.region },
          centralBusArn: busArn,
          patterns,
          organizationalUnitIds: cfg.stackSet.organizationalUnitIds,
          regions,
          callAs: cfg.stackSet.callAs ?? 'SELF',
          ...memberOptions,
          description: 'trailwatch: service-managed StackSet with the member rules for the organisation',
          tags,
        });

  return { app, central, members, stackSet };
}
