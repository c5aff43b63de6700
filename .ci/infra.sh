#!/usr/bin/env bash
# The CDK app: install (locked), type-check, assertion + cdk-nag tests, synth offline, then
# cfn-lint and checkov on the synthesized templates. Needs node >= 20 and python3; no AWS
# credentials, no Rust build (the Lambda code is a placeholder unless cargo lambda built it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The CDK CLI must not phone home: no notices, no telemetry, no credentials lookups.
export CDK_DISABLE_CLI_TELEMETRY=true
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN

echo "== infra: npm ci"
cd "$root/infra"
npm ci --no-audit --no-fund

echo "== infra: type-check"
npx tsc --noEmit -p .

echo "== infra: assertion and cdk-nag tests"
npm test

echo "== infra: synth"
rm -rf cdk.out
npx cdk synth --no-notices --quiet >/dev/null
templates=(cdk.out/*.template.json)
echo "synthesized ${#templates[@]} templates"

echo "== infra: cfn-lint and checkov"
venv="$root/.venv-infra"
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/cfn-lint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check cfn-lint checkov
fi
"$venv/bin/cfn-lint" --version
# W3005: CDK writes DependsOn for a dependency that a Ref already implies (the Lambda on its
# role); harmless and generated. See README "Deploy" for every skip and why.
"$venv/bin/cfn-lint" --ignore-checks W3005 -- "${templates[@]}"

"$venv/bin/checkov" --version
# Offline: no guideline mapping or policy download from the vendor's API.
BC_SKIP_MAPPING=TRUE "$venv/bin/checkov" --skip-download --quiet --compact --framework cloudformation \
  --config-file "$root/infra/.checkov.yaml" \
  $(printf -- '--file %s ' "${templates[@]}")
echo "infra: all checks passed"
