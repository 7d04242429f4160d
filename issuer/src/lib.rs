//! vouch-issuer: see the workspace README; filled by its own issue.
