//! The credentials list: a card per credential, search and a kind filter.

use vouch_wallet::wallet::Summary;

use crate::when;

/// The filter value that lets every kind through.
pub const ALL_KINDS: &str = "All kinds";

/// One credential as a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// The wallet's id.
    pub id: String,
    /// The holder-facing title.
    pub title: String,
    /// The issuer: its accredited name once the wallet has a registry
    /// replica; until then its DID, shortened.
    pub issuer: String,
    /// The kind (template name), else the `vct`.
    pub kind: String,
    /// `valid`, `revoked`, `suspended`, `expired` or `unknown`.
    pub status: String,
    /// Where the status comes from, "as of" when.
    pub as_of: String,
    /// The issue date.
    pub issued: String,
}

impl Card {
    /// The card of a credential. The wallet has no registry replica yet, so
    /// revocation status is `unknown`; only expiry (from the credential
    /// itself) is known offline.
    pub fn from_summary(s: &Summary) -> Card {
        use vouch_wallet::wallet::Standing;
        let status = match s.standing {
            Standing::Valid => "valid",
            Standing::Revoked => "revoked",
            Standing::Suspended => "suspended",
            Standing::Expired => "expired",
            Standing::Unknown => "unknown",
        };
        let as_of = match (s.standing, s.as_of) {
            (Standing::Expired, _) => format!(
                "expired {}",
                s.expires_at.map(when::date).unwrap_or_default()
            ),
            (_, Some(a)) => format!("as of chain block {}, {} min old", a.height, a.age / 60),
            (_, None) => "revocation status unknown: no registry replica synced yet".to_owned(),
        };
        Card {
            id: s.id.clone(),
            title: s.title.clone(),
            issuer: s
                .issuer_name
                .clone()
                .unwrap_or_else(|| short_did(&s.issuer)),
            kind: s.kind.clone().unwrap_or_else(|| s.vct.clone()),
            status: status.to_owned(),
            as_of,
            issued: s.issued_at.map_or_else(|| "—".to_owned(), when::date),
        }
    }

    /// Whether the card matches the search text (any word, in title,
    /// issuer or kind, ignoring case) and the kind filter.
    pub fn matches(&self, search: &str, kind: &str) -> bool {
        if kind != ALL_KINDS && !kind.is_empty() && self.kind != kind {
            return false;
        }
        let haystack = format!("{} {} {}", self.title, self.issuer, self.kind).to_lowercase();
        search
            .split_whitespace()
            .all(|word| haystack.contains(&word.to_lowercase()))
    }
}

/// The cards passing `search` and `kind`, in wallet order.
pub fn filter(cards: &[Card], search: &str, kind: &str) -> Vec<Card> {
    cards
        .iter()
        .filter(|c| c.matches(search, kind))
        .cloned()
        .collect()
}

/// The filter's choices: [`ALL_KINDS`], then each kind held, sorted.
pub fn kinds(cards: &[Card]) -> Vec<String> {
    let mut kinds: Vec<String> = cards.iter().map(|c| c.kind.clone()).collect();
    kinds.sort();
    kinds.dedup();
    kinds.insert(0, ALL_KINDS.to_owned());
    kinds
}

/// `did:key:z6MkhaXg…2doK`: the start and end of a long DID.
pub fn short_did(did: &str) -> String {
    let chars: Vec<char> = did.chars().collect();
    if chars.len() <= 24 {
        return did.to_owned();
    }
    let head: String = chars[..16].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, title: &str, kind: Option<&str>, expired: bool) -> Summary {
        Summary {
            id: id.into(),
            title: title.into(),
            issuer: "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK".into(),
            kind: kind.map(Into::into),
            vct: "https://vouch.example/vct/x".into(),
            issued_at: Some(1_752_537_600),
            expires_at: Some(1_760_000_000),
            expired,
            anchored: false,
            issuer_name: None,
            standing: if expired {
                vouch_wallet::wallet::Standing::Expired
            } else {
                vouch_wallet::wallet::Standing::Unknown
            },
            as_of: None,
        }
    }

    #[test]
    fn cards_say_unknown_until_a_replica_and_expired_from_the_credential() {
        let held = Card::from_summary(&summary("a", "BSc CS — Uni", Some("transcript"), false));
        assert_eq!(held.status, "unknown");
        assert_eq!(held.issuer, "did:key:z6MkhaXg…2doK");
        assert_eq!(held.issued, "2025-07-15");
        let old = Card::from_summary(&summary("b", "Policy", None, true));
        assert_eq!(old.status, "expired");
        assert_eq!(old.kind, "https://vouch.example/vct/x");
        assert!(old.as_of.contains("2025-10-09"));
    }

    #[test]
    fn search_and_kind_filter() {
        let cards: Vec<Card> = [
            summary(
                "a",
                "BSc Computer Science — State University",
                Some("transcript"),
                false,
            ),
            summary("b", "Engineer — Acme", Some("employment"), false),
            summary(
                "c",
                "MSc Physics — State University",
                Some("transcript"),
                false,
            ),
        ]
        .iter()
        .map(Card::from_summary)
        .collect();
        let ids = |v: Vec<Card>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(ids(filter(&cards, "", ALL_KINDS)), ["a", "b", "c"]);
        assert_eq!(ids(filter(&cards, "state", ALL_KINDS)), ["a", "c"]);
        assert_eq!(ids(filter(&cards, "STATE physics", ALL_KINDS)), ["c"]);
        assert_eq!(ids(filter(&cards, "", "employment")), ["b"]);
        assert_eq!(
            ids(filter(&cards, "state", "employment")),
            Vec::<String>::new()
        );
        assert_eq!(kinds(&cards), [ALL_KINDS, "employment", "transcript"]);
    }
}
