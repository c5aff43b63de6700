// The configuration file: validation, model ids, and where the Lambda code comes from.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { LAMBDA_ARTIFACT_DIR, LAMBDA_PLACEHOLDER_DIR, TrailwatchConfig, accountsValue, config, parseModelId, validateConfig } from '../config';
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
    ['a Lambda timeout over 15 minutes', { lambda: { memoryMb: 512, timeoutSeconds: 901 } }, /lambda.timeoutSeconds/],
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
    assert.throws(() => lambdaCodeDir(true, missing), /cargo lambda build --release --arm64/);
    assert.ok(fs.existsSync(path.join(LAMBDA_PLACEHOLDER_DIR, 'bootstrap')));
  });

  it('is looked for where cargo lambda puts it', () => {
    assert.equal(path.relative(path.join(__dirname, '..', '..'), LAMBDA_ARTIFACT_DIR), path.join('target', 'lambda', 'trailwatch-lambda'));
  });
});
