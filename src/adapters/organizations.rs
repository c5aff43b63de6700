//! AWS Organizations as the [`Directory`] of the organisation's accounts: `ListAccounts`, every
//! page. Only the management account or a delegated administrator may call it (AWS
//! Organizations User Guide, "Delegated administrator for AWS Organizations"); elsewhere it is
//! refused, and the organisation stays what configuration says.

use aws_sdk_organizations::Client;
use aws_sdk_organizations::error::DisplayErrorContext;

use crate::ports::Directory;

/// A `ListAccounts` call that failed, with its cause (access denied, throttled, no network).
#[derive(Debug, thiserror::Error)]
#[error("AWS Organizations ListAccounts: {0}")]
pub struct OrganizationsError(String);

/// The organisation's accounts from AWS Organizations.
#[derive(Debug, Clone)]
pub struct Organizations {
    client: Client,
}

impl Organizations {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl Directory for Organizations {
    type Error = OrganizationsError;

    async fn accounts(&self) -> Result<Vec<String>, Self::Error> {
        let mut ids = Vec::new();
        let mut pages = self.client.list_accounts().into_paginator().send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|err| OrganizationsError(DisplayErrorContext(err).to_string()))?;
            ids.extend(
                page.accounts()
                    .iter()
                    .filter_map(|a| a.id().map(str::to_owned)),
            );
        }
        Ok(ids)
    }
}
