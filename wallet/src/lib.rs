//! vouch-wallet: see the workspace README; filled by its own issue.
