// The central stack's resources and policies, for the checked-in configuration and variants.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as fs from 'node:fs';
import * as path from 'node:path';

import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';

import { TrailwatchConfig } from '../config';
import { buildApp } from '../lib/app';
import { checkAlarms, checkBusAndStream, checkFunction, checkLeastPrivilege, checkPipe, checkTable, checkTick } from './checks';
import { accountsConfig, baseConfig, build, centralTemplate, getAtt, logicalIdByPath, newApp, only, resourcesOfType, tempDir, usProfileConfig } from './helpers';

const variants: [string, TrailwatchConfig][] = [
  ['organisation, global inference profile', baseConfig],
  ['account list, plain model id', accountsConfig],
  ['US inference profile', usProfileConfig],
];

for (const [name, cfg] of variants) {
  describe(`central stack (${name})`, () => {
    const t = centralTemplate(cfg);
    it('puts the bus, its policy, the rule to Kinesis and the stream in place', () => checkBusAndStream(t, cfg));
    it('reads the stream with a Pipe: bisect, bounded retries and age, an SQS DLQ', () => checkPipe(t, cfg));
    it('runs the Lambda with exactly the permissions it needs', () => checkFunction(t, cfg));
    it('grants no wildcard action or resource in any IAM policy', () => checkLeastPrivilege(t));
    it('keeps state in one on-demand table with PITR, TTL, KMS and the due index', () => checkTable(t));
    it('ticks every minute with the tick payload', () => checkTick(t, cfg));
    it('alarms on every failure the issue lists', () => checkAlarms(t));
  });
}

describe('central stack details', () => {
  const t = centralTemplate();
  const res = t.toJSON().Resources;

  it('has exactly the resources the design names', () => {
    const counts: Record<string, number> = {};
    for (const r of Object.values(res) as { Type: string }[]) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
    assert.deepEqual(counts, {
      'AWS::CloudWatch::Alarm': 9,
      'AWS::DynamoDB::Table': 1,
      'AWS::Events::EventBus': 1,
      'AWS::Events::EventBusPolicy': 1,
      'AWS::Events::Rule': 1,
      'AWS::IAM::Policy': 4,
      'AWS::IAM::Role': 4,
      'AWS::KMS::Alias': 1,
      'AWS::KMS::Key': 1,
      'AWS::Kinesis::Stream': 1,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::Lambda::Function': 1,
      'AWS::Logs::LogGroup': 1,
      'AWS::Pipes::Pipe': 1,
      'AWS::SNS::Topic': 1,
      'AWS::SNS::TopicPolicy': 1,
      'AWS::SQS::Queue': 2,
      'AWS::SQS::QueuePolicy': 2,
      'AWS::Scheduler::Schedule': 1,
      'AWS::SecretsManager::Secret': 1,
    });
  });

  it('rotates the key and lets only the named services use it, each narrowed', () => {
    const [, key] = only(t, 'AWS::KMS::Key');
    assert.equal(key.Properties.EnableKeyRotation, true);
    assert.equal(key.DeletionPolicy, 'Retain');
    const services = (key.Properties.KeyPolicy.Statement as any[]).filter((s) => s.Principal.Service);
    assert.deepEqual(services.map((s) => s.Principal.Service).sort(), ['cloudwatch.amazonaws.com', 'events.amazonaws.com', 'logs.us-east-1.amazonaws.com']);
    const bySid = Object.fromEntries(services.map((s) => [s.Sid, s.Condition]));
    assert.deepEqual(bySid.EventBridgeIntoTheBusDlq, {
      ArnEquals: { 'aws:SourceArn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:us-east-1:123456789012:rule/trailwatch/trailwatch-to-stream']] } },
    });
    assert.deepEqual(bySid.CloudWatchLogsForTheLambdaLogGroup, {
      ArnEquals: { 'kms:EncryptionContext:aws:logs:arn': { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:log-group:/aws/lambda/trailwatch']] } },
    });
    assert.equal(bySid.CloudWatchAlarmsIntoTheTopic, undefined, 'as the CloudWatch guide writes it');
    const rule = only(t, 'AWS::Events::Rule')[1].Properties;
    assert.equal(rule.Name, 'trailwatch-to-stream', 'the name the key policy uses');
  });

  it('encrypts the secret, the queues and the logs with the key', () => {
    const key = getAtt(logicalIdByPath(t, '/Key/Resource'));
    assert.deepEqual(only(t, 'AWS::SecretsManager::Secret')[1].Properties.KmsKeyId, key);
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
    const app = build({ ...baseConfig, alarms: { ...baseConfig.alarms, emails: ['secops@example.com'] } });
    Template.fromStack(app.central).hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'secops@example.com',
    });
  });

  it('outputs the bus, secret and topic ARNs', () => {
    assert.deepEqual(Object.keys(t.toJSON().Outputs).sort(), ['AlarmTopicArn', 'CentralBusArn', 'SlackSecretArn']);
  });

  it('warns when the Lambda code is the placeholder, not when it is built', () => {
    Annotations.fromStack(build().central).hasWarning('/TrailwatchCentral/Function', Match.stringLikeRegexp('placeholder'));
    const dir = tempDir('trailwatch-built-');
    fs.writeFileSync(path.join(dir, 'bootstrap'), '');
    const built = buildApp(baseConfig, { app: newApp(), codeDir: dir });
    Annotations.fromStack(built.central).hasNoWarning('*', Match.stringLikeRegexp('placeholder'));
  });
});
