//! Secrets Manager: reads the Slack secret once, at start. The only place that calls it.

use aws_sdk_secretsmanager::Client;

use crate::ports::Retryable;
use crate::secret::Secret;

/// Reading the secret failed. Says which ARN and why, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read secret {arn} from Secrets Manager: {kind}")]
    Read { arn: String, kind: String },
    #[error("secret {arn} has no SecretString (binary secrets are not supported)")]
    NotString { arn: String },
}

impl Retryable for SecretsError {
    fn is_retryable(&self) -> bool {
        // Throttling, a service error or no answer: try again. A missing secret, a denied
        // read or a key that cannot decrypt it needs a person.
        match self {
            Self::Read { kind, .. } => !matches!(
                kind.as_str(),
                "ResourceNotFoundException"
                    | "AccessDeniedException"
                    | "AccessDenied"
                    | "DecryptionFailure"
                    | "InvalidParameterException"
                    | "InvalidRequestException"
            ),
            Self::NotString { .. } => false,
        }
    }
}

/// The `SecretString` of `arn`.
pub async fn fetch_secret(client: &Client, arn: &str) -> Result<Secret, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|err| SecretsError::Read {
            arn: arn.to_owned(),
            // The service's error code (AccessDeniedException, ResourceNotFoundException, ...);
            // the SDK's own text is not used: it is long and can echo the request.
            kind: aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&err)
                .unwrap_or("no answer from the service")
                .to_owned(),
        })?;
    output
        .secret_string()
        .map(Secret::new)
        .ok_or_else(|| SecretsError::NotString {
            arn: arn.to_owned(),
        })
}
