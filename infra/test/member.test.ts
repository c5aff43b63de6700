// Member stacks (one per account and region) and the optional StackSet.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { Template } from 'aws-cdk-lib/assertions';

import { MEMBER_PATTERNS_FILE, memberRegions } from '../config';
import { memberStackId } from '../lib/app';
import { centralBusArn } from '../lib/central-stack';
import { PATTERN_LIMIT, loadMemberPatterns } from '../lib/member-stack';
import { checkLeastPrivilege, checkMember } from './checks';
import { accountsConfig, baseConfig, build, only, tempDir } from './helpers';

const patterns = JSON.parse(fs.readFileSync(MEMBER_PATTERNS_FILE, 'utf8'));

describe('member stacks', () => {
  const built = build(baseConfig);
  const busArn = centralBusArn(baseConfig);

  it('exist for every account in us-east-1 and every listed region', () => {
    const expected = Object.keys(baseConfig.accounts).flatMap((a) => memberRegions(baseConfig).map((r) => memberStackId(a, r)));
    assert.deepEqual(built.members.map((m) => m.stackName).sort(), expected.sort());
    assert.ok(memberRegions(accountsConfig).includes('us-east-1'), 'us-east-1 is always added');
    assert.equal(memberRegions({ ...baseConfig, memberRegions: ['us-east-1', 'us-east-1'] }).length, 1);
  });

  it('forward every pattern of the checked-in file to the central bus, and nothing else', () => {
    assert.equal(busArn, 'arn:aws:events:us-east-1:123456789012:event-bus/trailwatch');
    assert.ok(patterns.length > 1, 'the built-in pack needs more than one rule');
    for (const m of built.members) {
      const t = Template.fromStack(m);
      checkMember(t, busArn, patterns, m.account);
      checkLeastPrivilege(t);
    }
  });
});

describe('member patterns file', () => {
  it('loads as a non-empty array of patterns within the rule limit', () => {
    const loaded = loadMemberPatterns();
    assert.deepEqual(loaded, patterns);
    for (const p of loaded) assert.ok(JSON.stringify(p).length <= PATTERN_LIMIT);
  });

  it('rejects a file that is not an array of small pattern objects', () => {
    const dir = tempDir('trailwatch-patterns-');
    const write = (name: string, text: string) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    assert.throws(() => loadMemberPatterns(write('empty.json', '[]')), /non-empty JSON array/);
    assert.throws(() => loadMemberPatterns(write('object.json', '{"source":["aws.iam"]}')), /non-empty JSON array/);
    assert.throws(() => loadMemberPatterns(write('string.json', '["x"]')), /element 0/);
    const big = { detail: { eventName: Array.from({ length: 300 }, (_, i) => `Event${i}`) } };
    assert.throws(() => loadMemberPatterns(write('big.json', JSON.stringify([big]))), /more than 2048/);
  });
});

describe('member StackSet', () => {
  it('is service-managed, auto-deploys to the OUs in every member region', () => {
    const built = build(baseConfig);
    assert.ok(built.stackSet, 'configured');
    assert.equal(built.stackSet.account, baseConfig.stackSet!.account);
    const t = Template.fromStack(built.stackSet);
    const [, ss] = only(t, 'AWS::CloudFormation::StackSet');
    const p = ss.Properties;
    assert.equal(p.PermissionModel, 'SERVICE_MANAGED');
    assert.deepEqual(p.AutoDeployment, { Enabled: true, RetainStacksOnAccountRemoval: false });
    assert.deepEqual(p.Capabilities, ['CAPABILITY_IAM']);
    assert.deepEqual(p.StackInstancesGroup, [
      { DeploymentTargets: { OrganizationalUnitIds: baseConfig.stackSet!.organizationalUnitIds }, Regions: memberRegions(baseConfig) },
    ]);
    const body = JSON.parse(p.TemplateBody);
    assert.equal(body.Parameters, undefined, 'no bootstrap parameter: member accounts need no CDK bootstrap');
    const inner = Template.fromJSON(body);
    checkMember(inner, centralBusArn(baseConfig), patterns, { Ref: 'AWS::AccountId' } as unknown as string);
    checkLeastPrivilege(inner);
  });

  it('is absent without an organisation', () => {
    assert.equal(build(accountsConfig).stackSet, undefined);
  });
});
