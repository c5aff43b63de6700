// The configuration file: validation, model ids, and where the Lambda code comes from.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { LAMBDA_ARTIFACT_DIR, LAMBDA_PLACEHOLDER_DIR, TrailwatchConfig, accountsValue, config, durationSeconds, heartbeatSchedule, parseModelId, validateConfig, watchedAccounts } from '../config';
import { lambdaCodeDir } from '../lib/central-stack';
import { tempDir } from './helpers';

describe('config', () => {
  it('the checked-in configuration is valid', () => validateConfig(config));

  const bad: [string, Partial<TrailwatchConfig>, RegExp][] = [
    ['a short account number', { accounts: { '1234': 'x' } }, /accounts: 1234/],
    ['an account name with a comma or equals sign', { accounts: { '111111111111': 'a,b=c' } }, /accounts: name/],
    ['a bad central account', { central: { account: 'abc', region: 'us-east-1' } }, /central.account/],
    ['a bad organisation id', { organizationId: 'org-1' }, /organizationId/],
    ['no organisation and no accounts', { organizationId: undefined, stackSet: undefined, accounts: {} }, /list the member accounts/],
    ['a StackSet without an organisation', { organizationId: undefined }, /stackSet: needs organizationId/],
    ['a batch over 10,000', { pipe: { ...config.pipe, batchSize: 10001 } }, /pipe.batchSize/],
    ['a record age of -1 (infinite)', { pipe: { ...config.pipe, maximumRecordAgeSeconds: -1 } }, /pipe.maximumRecordAgeSeconds/],
    ['a window that is not a duration', { window: 'five minutes' }, /window/],
    ['a Lambda timeout over 15 minutes', { lambda: { ...config.lambda, timeoutSeconds: 901 } }, /lambda.timeoutSeconds/],
    ['no alarm subscriber', { alarms: { ...config.alarms, emails: [] } }, /alarms\.emails: empty/],
    ['an alarm subscriber that is no address', { alarms: { ...config.alarms, emails: ['secops'] } }, /alarms\.emails: secops/],
    ['reserved concurrency 0', { lambda: { ...config.lambda, reservedConcurrency: 0 } }, /lambda\.reservedConcurrency: 0/],
    ['fractional reserved concurrency', { lambda: { ...config.lambda, reservedConcurrency: 2.5 } }, /lambda\.reservedConcurrency/],
    ['a silence threshold of two heartbeat intervals', { heartbeat: { intervalMinutes: 5, silenceAfter: '10m' } }, /heartbeat\.silenceAfter: 10m must be longer/],
    ['a silence threshold that is no duration', { heartbeat: { intervalMinutes: 5, silenceAfter: 'soon' } }, /heartbeat\.silenceAfter: soon/],
    ['a heartbeat every 0 minutes', { heartbeat: { intervalMinutes: 0, silenceAfter: '15m' } }, /heartbeat\.intervalMinutes/],
    ['a quiet threshold that is no duration', { heartbeat: { ...config.heartbeat, quietAfter: '1 day' } }, /heartbeat\.quietAfter/],
    ['an archive shorter than the DLQs keep messages', { archiveRetentionDays: 7 }, /archiveRetentionDays: 7/],
    ['an archive kept forever (0)', { archiveRetentionDays: 0 }, /archiveRetentionDays: 0/],
    ['a StackSet callAs that CloudFormation does not know', { stackSet: { ...config.stackSet!, callAs: 'ADMIN' as 'SELF' } }, /stackSet\.callAs/],
    ['a bad management account', { managementAccount: '12345' }, /managementAccount: 12345/],
    ['no key user', { kmsUserPrincipalArns: [] }, /kmsUserPrincipalArns: empty/],
    ['a key user of another account', { kmsUserPrincipalArns: ['arn:aws:iam::111111111111:role/x'] }, /kmsUserPrincipalArns: arn/],
    ['the account root as a key user', { kmsUserPrincipalArns: ['arn:aws:iam::123456789012:root'] }, /kmsUserPrincipalArns: arn/],
    ['a key administrator that is not an ARN', { kmsAdminPrincipalArn: 'admins' }, /kmsAdminPrincipalArn: admins/],
  ];
  for (const [name, change, message] of bad) {
    it(`rejects ${name}`, () => assert.throws(() => validateConfig({ ...config, ...change }), message));
  }

  it('tells inference profiles from model ids', () => {
    assert.deepEqual(parseModelId('global.anthropic.claude-sonnet-4-5-20250929-v1:0'), { profile: 'global', model: 'anthropic.claude-sonnet-4-5-20250929-v1:0' });
    assert.deepEqual(parseModelId('us.anthropic.claude-sonnet-4-20250514-v1:0'), { profile: 'us', model: 'anthropic.claude-sonnet-4-20250514-v1:0' });
    assert.deepEqual(parseModelId('apac.amazon.nova-pro-v1:0'), { profile: 'apac', model: 'amazon.nova-pro-v1:0' });
    assert.deepEqual(parseModelId('anthropic.claude-3-5-sonnet-20240620-v1:0'), { model: 'anthropic.claude-3-5-sonnet-20240620-v1:0' });
    assert.deepEqual(parseModelId('amazon.titan-text-express-v1'), { model: 'amazon.titan-text-express-v1' });
  });

  it('accepts what the brief calls valid', () => {
    validateConfig({ ...config, lambda: { ...config.lambda, reservedConcurrency: 'none' } });
    validateConfig({ ...config, heartbeat: { intervalMinutes: 1, silenceAfter: '3m', quietAfter: '24h' } });
    validateConfig({ ...config, managementAccount: undefined, kmsAdminPrincipalArn: 'arn:aws:iam::123456789012:role/key-admins' });
  });

  it('adds the management and central accounts to the watched ones, named unless configured', () => {
    assert.deepEqual(watchedAccounts(config), { '111111111111': 'prod', '222222222222': 'dev', '999999999999': 'management', '123456789012': 'security' });
    assert.deepEqual(watchedAccounts({ ...config, managementAccount: undefined, accounts: { '123456789012': 'sec' } }), { '123456789012': 'sec' });
  });

  it('reads durations and writes the heartbeat schedule', () => {
    assert.equal(durationSeconds('15m'), 900);
    assert.equal(durationSeconds('2h'), 7200);
    assert.equal(durationSeconds('15 minutes'), undefined);
    assert.equal(heartbeatSchedule(config), 'rate(5 minutes)');
    assert.equal(heartbeatSchedule({ ...config, heartbeat: { intervalMinutes: 1, silenceAfter: '3m' } }), 'rate(1 minute)');
  });

  it('writes account names as the Lambda reads them', () => {
    assert.equal(accountsValue({ '111111111111': 'prod', '222222222222': 'dev' }), '111111111111=prod,222222222222=dev');
  });
});

describe('Lambda code', () => {
  it('is the cargo lambda output when it is built', () => {
    const dir = tempDir('trailwatch-artifact-');
    fs.writeFileSync(path.join(dir, 'bootstrap'), '');
    assert.equal(lambdaCodeDir(true, dir), dir);
    assert.equal(lambdaCodeDir(false, dir), dir);
  });

  it('falls back to the placeholder for synth, and refuses it for deploy', () => {
    const missing = tempDir('trailwatch-no-artifact-');
    assert.equal(lambdaCodeDir(false, missing), LAMBDA_PLACEHOLDER_DIR);
    assert.throws(() => lambdaCodeDir(true, missing), /cargo lambda build --profile dist --arm64/);
    assert.ok(fs.existsSync(path.join(LAMBDA_PLACEHOLDER_DIR, 'bootstrap')));
  });

  it('is looked for where cargo lambda puts it', () => {
    assert.equal(path.relative(path.join(__dirname, '..', '..'), LAMBDA_ARTIFACT_DIR), path.join('target', 'lambda', 'trailwatch-lambda'));
  });
});
