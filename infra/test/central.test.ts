// The central stack's resources and policies, for the checked-in configuration and variants.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as fs from 'node:fs';
import * as path from 'node:path';

import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';

import { TrailwatchConfig, config } from '../config';
import { buildApp } from '../lib/app';
import { checkAlarms, checkArchive, checkBusAndStream, checkFunction, checkKey, checkLeastPrivilege, checkPipe, checkTable, checkTick } from './checks';
import { accountsConfig, adminConfig, baseConfig, build, centralTemplate, getAtt, logicalIdByPath, newApp, only, resourcesOfType, tempDir, usProfileConfig } from './helpers';

const patterns = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'member-patterns.json'), 'utf8'));

const variants: [string, TrailwatchConfig][] = [
  ['organisation, global inference profile', baseConfig],
  ['account list, plain model id, quiet-after, no reserved concurrency', accountsConfig],
  ['US inference profile', usProfileConfig],
  ['configured key administrator, two key users', adminConfig],
];

for (const [name, cfg] of variants) {
  describe(`central stack (${name})`, () => {
    const t = centralTemplate(cfg);
    it('puts the bus, its policy, the two rules to Kinesis and the stream in place', () => checkBusAndStream(t, cfg, patterns));
    it('archives what the central rules accept, under the key', () => checkArchive(t, cfg));
    it('reads the stream with a Pipe: bisect, bounded retries and age, an SQS DLQ', () => checkPipe(t, cfg));
    it('runs the Lambda with exactly the permissions it needs', () => checkFunction(t, cfg));
    it('grants no wildcard action or resource in any IAM policy', () => checkLeastPrivilege(t));
    it('separates key administration from use, and names every user', () => checkKey(t, cfg));
    it('keeps state in one on-demand table with PITR, TTL, KMS and the due index', () => checkTable(t));
    it('ticks every minute with the tick payload', () => checkTick(t, cfg));
    it('alarms on every failure the issue lists, on silence too', () => checkAlarms(t, cfg));
  });
}

describe('central stack details', () => {
  const t = centralTemplate();
  const res = t.toJSON().Resources;

  it('has exactly the resources the design names', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(res) as { Type: string }[]) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    assert.deepEqual(counts, {
      'AWS::CloudWatch::Alarm': 18,
      'AWS::DynamoDB::Table': 1,
      'AWS::Events::Archive': 1,
      'AWS::Events::EventBus': 1,
      'AWS::Events::EventBusPolicy': 1,
      'AWS::Events::Rule': 2,
      'AWS::IAM::Policy': 4,
      'AWS::IAM::Role': 4,
      'AWS::KMS::Alias': 1,
      'AWS::KMS::Key': 1,
      'AWS::Kinesis::Stream': 1,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::Lambda::Function': 1,
      'AWS::Logs::LogGroup': 1,
      'AWS::Pipes::Pipe': 1,
      'AWS::SNS::Subscription': 1,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SQS::Queue': 2,
      'AWS::SQS::QueuePolicy': 2,
      'AWS::Scheduler::Schedule': 1,
      'AWS::SecretsManager::Secret': 1,
    });
  });

  it('names the key, its rules and its pipe as the key and trust policies expect', () => {
    const names = resourcesOfType(t, 'AWS::Events::Rule').map(([, r]) => r.Properties.Name).sort();
    assert.deepEqual(names, ['trailwatch-heartbeat-to-stream', 'trailwatch-to-stream']);
    assert.equal(only(t, 'AWS::Pipes::Pipe')[1].Properties.Name, 'trailwatch');
    assert.equal(only(t, 'AWS::Scheduler::Schedule')[1].Properties.Name, 'trailwatch-tick');
  });

  it('encrypts the secret, the queues, the logs and the archive with the key', () => {
    const key = getAtt(logicalIdByPath(t, '/Key/Resource'));
    assert.deepEqual(only(t, 'AWS::SecretsManager::Secret')[1].Properties.KmsKeyId, key);
    assert.deepEqual(only(t, 'AWS::Events::Archive')[1].Properties.KmsKeyIdentifier, key);
    for (const [, q] of resourcesOfType(t, 'AWS::SQS::Queue')) assert.deepEqual(q.Properties.KmsMasterKeyId, key);
    const [, logs] = only(t, 'AWS::Logs::LogGroup');
    assert.deepEqual(logs.Properties.KmsKeyId, key);
    assert.equal(logs.Properties.RetentionInDays, baseConfig.logRetentionDays);
  });

  it('denies plain-HTTP access to the queues and the topic', () => {
    const policies = [...resourcesOfType(t, 'AWS::SQS::QueuePolicy'), ...resourcesOfType(t, 'AWS::SNS::TopicPolicy')];
    assert.equal(policies.length, 3);
    for (const [, p] of policies) {
      assert.ok(
        (p.Properties.PolicyDocument.Statement as any[]).some(
          (s) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
        ),
      );
    }
  });

  it('does not retry lost ticks asynchronously', () => {
    const [, cfg] = only(t, 'AWS::Lambda::EventInvokeConfig');
    assert.equal(cfg.Properties.MaximumRetryAttempts, 0);
    assert.equal(cfg.Properties.MaximumEventAgeInSeconds, 60);
  });

  it('retains the table and refuses to delete it', () => {
    const [, table] = only(t, 'AWS::DynamoDB::Table');
    assert.equal(table.DeletionPolicy, 'Retain');
  });

  it('subscribes the configured alarm addresses', () => {
    const app = build({ ...baseConfig, alarms: { ...baseConfig.alarms, emails: ['secops@example.com', 'oncall@example.com'] } });
    const subs = Template.fromStack(app.central).findResources('AWS::SNS::Subscription');
    assert.deepEqual(Object.values(subs).map((s: any) => s.Properties.Endpoint).sort(), ['oncall@example.com', 'secops@example.com']);
  });

  it('outputs the bus, archive, secret and topic ARNs', () => {
    assert.deepEqual(Object.keys(t.toJSON().Outputs).sort(), ['AlarmTopicArn', 'ArchiveArn', 'CentralBusArn', 'SlackSecretArn']);
  });

  it('reserves concurrency as configured, and warns loudly when it is opted out', () => {
    assert.equal(only(t, 'AWS::Lambda::Function')[1].Properties.ReservedConcurrentExecutions, config.lambda.reservedConcurrency);
    assert.equal(config.lambda.reservedConcurrency, 2 * 4 * config.pipe.parallelizationFactor + 2, 'the example computes it from shards and ticks');
    Annotations.fromStack(build().central).hasNoWarning('*', Match.stringLikeRegexp('NO reserved concurrency'));
    const none = build({ ...baseConfig, lambda: { ...baseConfig.lambda, reservedConcurrency: 'none' } });
    assert.equal(Template.fromStack(none.central).toJSON().Resources[logicalIdByPath(t, '/Function/Resource')].Properties.ReservedConcurrentExecutions, undefined);
    Annotations.fromStack(none.central).hasWarning('/TrailwatchCentral/Function', Match.stringLikeRegexp('NO reserved concurrency'));
  });

  it('warns when the Lambda code is the placeholder, not when it is built', () => {
    Annotations.fromStack(build().central).hasWarning('/TrailwatchCentral/Function', Match.stringLikeRegexp('placeholder'));
    const dir = tempDir('trailwatch-built-');
    fs.writeFileSync(path.join(dir, 'bootstrap'), '');
    const built = buildApp(baseConfig, { app: newApp(), codeDir: dir });
    Annotations.fromStack(built.central).hasNoWarning('*', Match.stringLikeRegexp('placeholder'));
  });
});
