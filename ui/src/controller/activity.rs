//! Activity: what was shared, when, with whom.

use vouch_wallet::wallet::Activity;

use crate::when;

/// One line of the activity view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityRow {
    /// When, as a date and time.
    pub when: String,
    /// The credential's title.
    pub title: String,
    /// The verifier's audience.
    pub audience: String,
    /// How it left: `qr`, `file`, `text`.
    pub channel: String,
    /// The claims shown, comma-separated.
    pub disclosed: String,
}

/// The rows, newest first.
pub fn rows(log: &[Activity]) -> Vec<ActivityRow> {
    log.iter()
        .rev()
        .map(|a| ActivityRow {
            when: when::date_time(a.at),
            title: a.title.clone(),
            audience: a.audience.clone(),
            channel: a.channel.clone(),
            disclosed: a.disclosed.join(", "),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_with_dates() {
        let a = |at: i64, aud: &str| Activity {
            at,
            credential: "c".into(),
            title: "BSc".into(),
            audience: aud.into(),
            disclosed: vec!["degree".into(), "courses[CS101]".into()],
            channel: "qr".into(),
        };
        let rows = rows(&[a(0, "first"), a(86_400, "second")]);
        assert_eq!(rows[0].audience, "second");
        assert_eq!(rows[0].when, "1970-01-02 00:00 UTC");
        assert_eq!(rows[1].disclosed, "degree, courses[CS101]");
    }
}
