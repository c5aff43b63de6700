// cdk-nag AwsSolutions: the whole app synthesizes with no unacknowledged finding, every
// acknowledgement carries a reason, and the check is live (a new finding fails synthesis).

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import * as cdk from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { IConstruct } from 'constructs';

import { TrailwatchConfig } from '../config';
import { accountsConfig, adminConfig, baseConfig, build, usProfileConfig } from './helpers';

/** Every acknowledgement in the tree: [construct path, rule id, reason]. */
function acknowledgements(root: IConstruct): [string, string, string][] {
  const found: [string, string, string][] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push([c.node.path, id, String(reason)]);
      }
    }
  }
  return found;
}

function violations(dir: string): unknown[] {
  const report = JSON.parse(fs.readFileSync(path.join(dir, 'validation-report.json'), 'utf8'));
  return report.pluginReports.flatMap((r: any) => r.violations);
}

const variants: [string, TrailwatchConfig][] = [
  ['checked-in configuration', baseConfig],
  ['account list', accountsConfig],
  ['US inference profile', usProfileConfig],
  ['configured key administrator', adminConfig],
];

describe('cdk-nag AwsSolutions', () => {
  for (const [name, cfg] of variants) {
    it(`finds nothing unacknowledged (${name})`, () => {
      const { app } = build(cfg);
      const assembly = app.synth();
      assert.deepEqual(violations(assembly.directory), []);
    });
  }

  it('acknowledges each finding with a reason, and only these', () => {
    const { app } = build(baseConfig);
    const acks = acknowledgements(app);
    // One line per construct path below its stack; every member stack acknowledges the same two.
    const ids = [...new Set(acks.map(([p, id]) => `${p.split('/').slice(1).join('/')} ${id.replace(/^AwsSolutions::/, '')}`))].sort();
    assert.deepEqual(ids, [
      'AlarmTopic AwsSolutions-SNS2',
      'BusDlq AwsSolutions-SQS3',
      'ForwardDlq AwsSolutions-SQS3',
      'FunctionPolicy AwsSolutions-IAM5[Resource::*]',
      'FunctionPolicy AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:us-east-1:123456789012:log-group:/aws/lambda/trailwatch:log-stream:*]',
      'PipeDlq AwsSolutions-SQS3',
      'SlackSecret AwsSolutions-SMG4',
      'Stream AwsSolutions-KDS3',
    ]);
    const snsAcks = acks.filter(([, id]) => id.endsWith('SNS2')).map(([p]) => p.split('/')[0]);
    assert.ok(snsAcks.every((stack) => stack.startsWith('TrailwatchMember-')), 'the central topic is encrypted; only member topics are not');
    for (const [p, id, reason] of acks) assert.ok(reason.length >= 30, `${p} ${id} needs a real reason`);
  });

  it('fails synthesis on a new finding', () => {
    const { app, central } = build(baseConfig);
    new sqs.Queue(central, 'StrayQueue', { enforceSSL: true, encryption: sqs.QueueEncryption.SQS_MANAGED });
    assert.throws(() => app.synth(), /Validation failed/);
    const dir = app.outdir;
    const rules = (violations(dir) as { ruleName: string }[]).map((v) => v.ruleName);
    assert.ok(rules.includes('AwsSolutions-SQS3'), `the stray queue has no DLQ: ${rules.join(', ')}`);
  });
});
