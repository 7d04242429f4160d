//! vouch-ui: see the workspace README; filled by its own issue.
