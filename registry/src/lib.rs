//! vouch-registry: see the workspace README; filled by its own issue.
