// Member stacks (one per account and region) and the optional StackSet.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { Template } from 'aws-cdk-lib/assertions';

import { MEMBER_PATTERNS_FILE, heartbeatSchedule, memberRegions, watchedAccounts } from '../config';
import { memberStackId } from '../lib/app';
import { centralBusArn } from '../lib/central-stack';
import { PATTERN_LIMIT, detailTypesOf, loadMemberPatterns } from '../lib/member-stack';
import { checkLeastPrivilege, checkMember } from './checks';
import { accountsConfig, adminConfig, baseConfig, build, only, tempDir } from './helpers';

const patterns = JSON.parse(fs.readFileSync(MEMBER_PATTERNS_FILE, 'utf8'));

describe('member stacks', () => {
  const built = build(baseConfig);
  const busArn = centralBusArn(baseConfig);

  it('exist for every account, the management and the central account, in us-east-1 and every listed region', () => {
    const accounts = [...Object.keys(baseConfig.accounts), baseConfig.managementAccount!, baseConfig.central.account];
    assert.deepEqual(Object.keys(watchedAccounts(baseConfig)).sort(), accounts.sort());
    const expected = accounts.flatMap((a) => memberRegions(baseConfig).map((r) => memberStackId(a, r)));
    assert.deepEqual(built.members.map((m) => m.stackName).sort(), expected.sort());
    const once = build(accountsConfig).members.map((m) => m.stackName);
    assert.equal(once.filter((n) => n.includes('-123456789012-')).length, memberRegions(accountsConfig).length, 'the central account once, though listed');
    assert.ok(memberRegions(accountsConfig).includes('us-east-1'), 'us-east-1 is always added');
    assert.equal(memberRegions({ ...baseConfig, memberRegions: ['us-east-1', 'us-east-1'] }).length, 1);
  });

  it('forward every pattern of the checked-in file to the central bus, and nothing else', () => {
    assert.equal(busArn, 'arn:aws:events:us-east-1:123456789012:event-bus/trailwatch');
    assert.ok(patterns.length > 1, 'the built-in pack needs more than one rule');
    for (const m of built.members) {
      const t = Template.fromStack(m);
      checkMember(t, busArn, patterns, { account: m.account, region: m.region }, { schedule: 'rate(5 minutes)', emails: baseConfig.alarms.emails });
      checkLeastPrivilege(t);
      assert.equal(t.toJSON().Resources[only(t, 'AWS::IAM::Role')[0]].Properties.RoleName, `trailwatch-forward-${m.region}`);
    }
  });

  it('skip two checkov checks on the member topic and queue only, each with its reason', () => {
    const t = Template.fromStack(built.members[0]).toJSON();
    const skips = Object.values(t.Resources as Record<string, any>)
      .filter((r) => r.Metadata?.checkov)
      .map((r) => [r.Type, r.Metadata.checkov.skip.map((x: any) => x.id).join(), r.Metadata.checkov.skip[0].comment.length > 60]);
    assert.deepEqual(skips, [
      ['AWS::SQS::Queue', 'CKV_AWS_27', true],
      ['AWS::SNS::Topic', 'CKV_AWS_26', true],
    ]);
  });

  it('beat as often as configured', () => {
    const t = Template.fromStack(build(accountsConfig).members[0]);
    checkMember(t, busArn, patterns, { account: build(accountsConfig).members[0].account, region: 'us-east-1' }, { schedule: heartbeatSchedule(accountsConfig), emails: accountsConfig.alarms.emails });
    assert.equal(heartbeatSchedule(accountsConfig), 'rate(1 minute)');
  });
});

describe('detail-types of the member patterns', () => {
  it('are every detail-type value, inside $or too, once each and sorted', () => {
    const found = detailTypesOf([
      { $or: [{ 'detail-type': ['B', 'A'] }, { detail: { x: ['y'] }, 'detail-type': ['C'] }] },
      { source: ['aws.ec2'], 'detail-type': ['A', 'D'] },
    ]);
    assert.deepEqual(found, ['A', 'B', 'C', 'D']);
    assert.ok(detailTypesOf(patterns).includes('AWS API Call via CloudTrail'));
  });

  it('must be exact values, and present', () => {
    assert.throws(() => detailTypesOf([{ 'detail-type': [{ prefix: 'AWS' }] }]), /not an exact value/);
    assert.throws(() => detailTypesOf([{ source: ['aws.iam'] }]), /no detail-type/);
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
    assert.equal(p.CallAs, 'SELF');
    assert.deepEqual(p.AutoDeployment, { Enabled: true, RetainStacksOnAccountRemoval: false });
    assert.deepEqual(p.Capabilities, ['CAPABILITY_NAMED_IAM'], 'the role has a fixed name');
    assert.deepEqual(p.StackInstancesGroup, [
      { DeploymentTargets: { OrganizationalUnitIds: baseConfig.stackSet!.organizationalUnitIds }, Regions: memberRegions(baseConfig) },
    ]);
    const body = JSON.parse(p.TemplateBody);
    assert.equal(body.Parameters, undefined, 'no bootstrap parameter: member accounts need no CDK bootstrap');
    const inner = Template.fromJSON(body);
    checkMember(inner, centralBusArn(baseConfig), patterns, { account: { Ref: 'AWS::AccountId' }, region: { Ref: 'AWS::Region' } }, { schedule: 'rate(5 minutes)', emails: baseConfig.alarms.emails });
    checkLeastPrivilege(inner);
    assert.ok(p.TemplateBody.length <= 51200, 'within TemplateBody\'s limit');
  });

  it('is called as a delegated administrator when configured', () => {
    const p = only(Template.fromStack(build(adminConfig).stackSet!), 'AWS::CloudFormation::StackSet')[1].Properties;
    assert.equal(p.CallAs, 'DELEGATED_ADMIN');
  });

  it('is absent without an organisation', () => {
    assert.equal(build(accountsConfig).stackSet, undefined);
  });
});
