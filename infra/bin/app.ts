// The CDK app: `npx cdk synth` (offline, placeholder Lambda code when the binary is not built)
// or `npm run deploy` (requires `cargo lambda build --release --arm64` first).

import * as cdk from 'aws-cdk-lib';

import { config } from '../config';
import { buildApp } from '../lib/app';
import { lambdaCodeDir } from '../lib/central-stack';

const app = new cdk.App();
const requireArtifact = app.node.tryGetContext('trailwatch:requireArtifact') === 'true' || app.node.tryGetContext('trailwatch:requireArtifact') === true;
buildApp(config, { app, codeDir: lambdaCodeDir(requireArtifact) });
app.synth();
