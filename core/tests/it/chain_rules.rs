//! Chain rules for status lists, accreditation periods and key rotation,
//! each fed through `ChainState::apply`: a refused entry leaves the state
//! exactly as it was.

use ed25519_dalek::SigningKey;
use vouch_core::chain::{Action, ChainState, Entry, ListUri, RuleError};
use vouch_core::did::DidKey;
use vouch_core::status_list::{StatusList, StatusListClaims};

const T: i64 = 1_800_000_000;
const BASE: &str = "https://registry.example";

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn id(k: &SigningKey) -> String {
    DidKey::from_public_key(&k.verifying_key())
        .as_str()
        .to_owned()
}

fn list(k: &SigningKey, name: &str) -> String {
    ListUri::format(BASE, &id(k), name)
}

/// Authors' next sequence numbers, so tests say only what they write.
struct Chain {
    state: ChainState,
}

impl Chain {
    /// Genesis by `authority`, which then accredits each of `issuers`.
    fn new(authority: &SigningKey, issuers: &[&SigningKey]) -> Self {
        let mut c = Self {
            state: ChainState::new(),
        };
        c.ok(
            authority,
            T,
            Action::Genesis {
                origin: "reg".into(),
                authorities: vec![id(authority)],
            },
        );
        for i in issuers {
            c.ok(authority, T, accredit(i));
        }
        c
    }

    fn next(&self, k: &SigningKey) -> u64 {
        self.state.authors.get(&id(k)).map_or(0, |(s, _)| s + 1)
    }

    fn apply(&mut self, k: &SigningKey, time: i64, action: Action) -> Result<(), RuleError> {
        let e = Entry::sign(k, self.next(k), time, action);
        self.state.apply(&e)
    }

    fn ok(&mut self, k: &SigningKey, time: i64, action: Action) {
        let what = format!("{action:?}");
        self.apply(k, time, action)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    }

    /// A rotate-key action from `old` to `new` as `old`'s next entry, with
    /// `new`'s proof of possession.
    fn rotate(&self, old: &SigningKey, new: &SigningKey) -> Action {
        Action::rotate_key("reg", &id(old), new, self.next(old))
    }

    /// Applies an entry that must be refused; the state must not change.
    fn refused(&mut self, k: &SigningKey, time: i64, action: Action) -> RuleError {
        let before = self.state.clone();
        let err = self
            .apply(k, time, action)
            .expect_err("the entry should be refused");
        assert_eq!(self.state, before, "a refused entry changed the state");
        err
    }
}

fn accredit(issuer: &SigningKey) -> Action {
    Action::Accredit {
        issuer: id(issuer),
        name: "Uni".into(),
        kinds: vec!["transcript".into()],
    }
}

fn anchor(list: &str) -> Action {
    Action::Anchor {
        list: list.into(),
        root: "ab".repeat(32),
        count: 2,
        first: 0,
        last: 9,
    }
}

struct Token<'a> {
    signer: &'a SigningKey,
    iss: Option<String>,
    sub: &'a str,
    exp: Option<i64>,
    statuses: &'a [(u64, u8)],
}

impl<'a> Token<'a> {
    fn new(signer: &'a SigningKey, sub: &'a str, statuses: &'a [(u64, u8)]) -> Self {
        Self {
            signer,
            iss: Some(id(signer)),
            sub,
            exp: None,
            statuses,
        }
    }

    fn sign(&self) -> String {
        let mut l = StatusList::new(2, 64).unwrap();
        for &(i, v) in self.statuses {
            l.set(i, v).unwrap();
        }
        StatusListClaims {
            sub: self.sub.into(),
            iss: self.iss.clone(),
            iat: T,
            exp: self.exp,
            ttl: None,
            list: l,
        }
        .sign(&id(self.signer), self.signer)
        .as_str()
        .to_owned()
    }

    fn action(&self, sequence: u64) -> Action {
        Action::Status {
            list: self.sub.into(),
            sequence,
            token: self.sign(),
        }
    }
}

#[test]
fn fail_list_uri_outside_the_authors_namespace() {
    let (auth, uni, rival) = (key(1), key(2), key(3));
    let mut c = Chain::new(&auth, &[&uni, &rival]);
    // The rival cannot take uni's next list: not by anchor, not by status.
    let unis = list(&uni, "2");
    assert!(matches!(
        c.refused(&rival, T + 1, anchor(&unis)),
        RuleError::ListNamespace { .. }
    ));
    assert!(matches!(
        c.refused(&rival, T + 1, Token::new(&rival, &unis, &[]).action(1)),
        RuleError::ListNamespace { .. }
    ));
    // Malformed URIs, and the old unscoped form.
    for bad in [
        format!("{BASE}/v1/status/uni-1"),
        format!("{BASE}/v1/status/{}", id(&uni)),
        format!("{BASE}/v1/status/{}~", id(&uni)),
        format!("{BASE}/v1/status/{}~Big", id(&uni)),
        format!("{BASE}/v1/status/{}~a/b", id(&uni)),
        format!("{BASE}/v1/status/{}~{}", id(&uni), "a".repeat(33)),
        format!("ftp://x/v1/status/{}~1", id(&uni)),
        format!("https:///v1/status/{}~1", id(&uni)),
        format!("{BASE}/v1/status/{}~1?x", id(&uni)),
        format!("{BASE}/{}/v1/status/{}~1", "p".repeat(512), id(&uni)),
        String::new(),
    ] {
        assert!(
            matches!(
                c.refused(&uni, T + 1, anchor(&bad)),
                RuleError::ListUri { .. }
            ),
            "{bad}"
        );
    }
    // Its own namespace is fine, and the list is then uni's alone.
    c.ok(&uni, T + 1, anchor(&unis));
    assert_eq!(c.state.lists[&unis].owner, id(&uni));
    assert_eq!(
        c.state
            .list_by_id(&format!("{}~2", id(&uni)))
            .map(|(u, _)| u),
        Some(unis.as_str())
    );
    assert_eq!(c.state.list_by_id("2"), None);
}

#[test]
fn fail_list_name_taken_under_another_uri() {
    let (auth, uni) = (key(1), key(2));
    let mut c = Chain::new(&auth, &[&uni]);
    c.ok(&uni, T + 1, anchor(&list(&uni, "1")));
    // The same (issuer, name) on another base would be a second list with
    // the same id: the registry serves lists by id.
    let elsewhere = ListUri::format("https://mirror.example", &id(&uni), "1");
    assert!(matches!(
        c.refused(&uni, T + 2, anchor(&elsewhere)),
        RuleError::ListNamespace { .. }
    ));
}

#[test]
fn fail_status_read_for_another_issuers_credential() {
    let (auth, uni, rival) = (key(1), key(2), key(3));
    let mut c = Chain::new(&auth, &[&uni, &rival]);
    let rivals = list(&rival, "1");
    c.ok(&rival, T + 1, Token::new(&rival, &rivals, &[]).action(1));
    // A credential by uni pointing at the rival's list gets no status.
    assert_eq!(
        c.state.status_of(&id(&uni), &rivals, 3, T + 2),
        Err(RuleError::ListIssuer {
            list: rivals.clone(),
            owner: id(&rival),
            iss: id(&uni),
        })
    );
    assert_eq!(
        c.state.status_of(&id(&rival), &rivals, 3, T + 2),
        Ok(Some(0))
    );
    // Suffix matches are not matches.
    let suffix = rivals.replace(BASE, "https://evil.example");
    assert_eq!(c.state.status_of(&id(&rival), &suffix, 3, T + 2), Ok(None));
}

#[test]
fn status_reads_follow_key_rotation() {
    let (auth, uni, uni2, uni3) = (key(1), key(2), key(4), key(5));
    let mut c = Chain::new(&auth, &[&uni]);
    let l1 = list(&uni, "1");
    c.ok(&uni, T + 1, Token::new(&uni, &l1, &[(3, 1)]).action(1));
    c.ok(&uni, T + 2, c.rotate(&uni, &uni2));
    c.ok(&uni2, T + 3, c.rotate(&uni2, &uni3));
    // The newest key still writes to the list named by the first key, and
    // may open lists under any key of its history.
    c.ok(
        &uni3,
        T + 4,
        Token::new(&uni3, &l1, &[(3, 1), (4, 1)]).action(2),
    );
    c.ok(&uni3, T + 5, anchor(&list(&uni, "2")));
    c.ok(&uni3, T + 5, anchor(&list(&uni2, "1")));
    for iss in [&uni, &uni2, &uni3] {
        assert_eq!(c.state.status_of(&id(iss), &l1, 4, T + 6), Ok(Some(1)));
    }
    assert!(c.state.same_issuer(&id(&uni3), &id(&uni)));
    assert!(!c.state.same_issuer(&id(&uni3), &id(&auth)));
}

#[test]
fn fail_status_token_iss_sub_or_exp_wrong() {
    let (auth, uni, rival) = (key(1), key(2), key(3));
    let mut c = Chain::new(&auth, &[&uni, &rival]);
    let l = list(&uni, "1");
    let other = list(&uni, "9");
    let cases = [
        Token {
            iss: None,
            ..Token::new(&uni, &l, &[])
        },
        Token {
            iss: Some(id(&rival)),
            ..Token::new(&uni, &l, &[])
        },
        Token::new(&rival, &l, &[]),
        Token {
            exp: Some(T + 1),
            ..Token::new(&uni, &l, &[])
        },
    ];
    for tok in &cases {
        assert!(matches!(
            c.refused(&uni, T + 1, tok.action(1)),
            RuleError::Token(_)
        ));
    }
    // sub names another list than the entry.
    let mut wrong_sub = Token::new(&uni, &other, &[]).action(1);
    if let Action::Status { list, .. } = &mut wrong_sub {
        list.clone_from(&l);
    }
    assert!(matches!(
        c.refused(&uni, T + 1, wrong_sub),
        RuleError::Token(_)
    ));
}

#[test]
fn expired_status_token_reads_as_unknown_not_valid() {
    let (auth, uni) = (key(1), key(2));
    let mut c = Chain::new(&auth, &[&uni]);
    let l = list(&uni, "1");
    c.ok(
        &uni,
        T + 1,
        Token {
            exp: Some(T + 100),
            ..Token::new(&uni, &l, &[(5, 1)])
        }
        .action(1),
    );
    assert_eq!(c.state.status_of(&id(&uni), &l, 4, T + 99), Ok(Some(0)));
    assert_eq!(
        c.state.status_of(&id(&uni), &l, 4, T + 100),
        Err(RuleError::TokenExpired {
            list: l.clone(),
            exp: T + 100,
            now: T + 100
        })
    );
}

#[test]
fn fail_revocation_undone_on_chain() {
    let (auth, uni) = (key(1), key(2));
    let mut c = Chain::new(&auth, &[&uni]);
    let l = list(&uni, "1");
    c.ok(
        &uni,
        T + 1,
        Token::new(&uni, &l, &[(5, 1), (6, 2)]).action(1),
    );
    for statuses in [&[(6, 2)][..], &[(5, 0), (6, 2)], &[(5, 2)], &[(5, 3)]] {
        assert!(matches!(
            c.refused(&uni, T + 2, Token::new(&uni, &l, statuses).action(2)),
            RuleError::StatusTransition {
                idx: 5,
                from: 1,
                why: "revocation is final",
                ..
            }
        ));
    }
    // A shorter list drops index 5: refused too.
    let token = StatusListClaims {
        sub: l.clone(),
        iss: Some(id(&uni)),
        iat: T,
        exp: None,
        ttl: None,
        list: StatusList::new(1, 0).unwrap(),
    }
    .sign(&id(&uni), &uni);
    assert!(matches!(
        c.refused(
            &uni,
            T + 2,
            Action::Status {
                list: l.clone(),
                sequence: 2,
                token: token.as_str().into()
            }
        ),
        RuleError::StatusTransition {
            idx: 5,
            to: None,
            ..
        }
    ));
    // Reinstating a suspension, and revoking more, are fine.
    c.ok(
        &uni,
        T + 2,
        Token::new(&uni, &l, &[(5, 1), (7, 1)]).action(2),
    );
    assert_eq!(c.state.status_of(&id(&uni), &l, 6, T + 3), Ok(Some(0)));
}

#[test]
fn fail_withdrawn_issuer_does_more_than_revoke_or_suspend() {
    let (auth, uni) = (key(1), key(2));
    let mut c = Chain::new(&auth, &[&uni]);
    let l = list(&uni, "1");
    c.ok(&uni, T + 1, anchor(&l));
    c.ok(
        &uni,
        T + 2,
        Token::new(&uni, &l, &[(1, 2), (2, 1)]).action(1),
    );
    c.ok(
        &auth,
        T + 3,
        Action::Withdraw {
            issuer: id(&uni),
            reason: "audit".into(),
        },
    );
    // No anchors, no new lists, no reinstating, no other values.
    assert_eq!(
        c.refused(&uni, T + 4, anchor(&l)),
        RuleError::Withdrawn(id(&uni))
    );
    let fresh = list(&uni, "2");
    assert_eq!(
        c.refused(&uni, T + 4, Token::new(&uni, &fresh, &[(1, 1)]).action(1)),
        RuleError::Withdrawn(id(&uni))
    );
    for statuses in [&[(2, 1)][..], &[(1, 2), (2, 1), (3, 3)]] {
        assert!(matches!(
            c.refused(&uni, T + 4, Token::new(&uni, &l, statuses).action(2)),
            RuleError::StatusTransition {
                why: "a withdrawn issuer may only revoke or suspend",
                ..
            }
        ));
    }
    assert!(matches!(
        c.refused(&uni, T + 4, c.rotate(&uni, &key(9))),
        RuleError::Withdrawn(_)
    ));
    // Revoking and suspending still work: the list does not freeze.
    c.ok(
        &uni,
        T + 4,
        Token::new(&uni, &l, &[(1, 1), (2, 1), (3, 2), (4, 1)]).action(2),
    );
    assert_eq!(c.state.status_of(&id(&uni), &l, 3, T + 5), Ok(Some(2)));
    assert_eq!(c.state.status_of(&id(&uni), &l, 1, T + 5), Ok(Some(1)));
}

#[test]
fn fail_accreditation_period_ending_before_it_starts() {
    let (auth, uni, uni2) = (key(1), key(2), key(4));
    let mut c = Chain::new(&auth, &[]);
    c.ok(&auth, T + 1000, accredit(&uni));
    // Rotation dated before the accreditation: the new key would be
    // accredited from the distant past.
    for time in [T, i64::MIN, T + 999] {
        assert_eq!(
            c.refused(&uni, time, c.rotate(&uni, &uni2)),
            RuleError::PeriodBackwards {
                issuer: id(&uni),
                from: T + 1000,
                at: time
            }
        );
    }
    // Withdrawal or re-accreditation dated before the period began, by a
    // second authority whose own clock is still early.
    let auth2 = key(6);
    let mut two = Chain {
        state: ChainState::new(),
    };
    two.ok(
        &auth,
        T,
        Action::Genesis {
            origin: "reg".into(),
            authorities: vec![id(&auth), id(&auth2)],
        },
    );
    two.ok(&auth, T + 1000, accredit(&uni));
    let backwards = RuleError::PeriodBackwards {
        issuer: id(&uni),
        from: T + 1000,
        at: T + 500,
    };
    assert_eq!(
        two.refused(
            &auth2,
            T + 500,
            Action::Withdraw {
                issuer: id(&uni),
                reason: "x".into()
            }
        ),
        backwards
    );
    assert_eq!(two.refused(&auth2, T + 500, accredit(&uni)), backwards);
    c.ok(&uni, T + 1000, c.rotate(&uni, &uni2));
    assert!(!c.state.accredited(&id(&uni2), "transcript", T + 999));
    assert!(c.state.accredited(&id(&uni2), "transcript", T + 1000));
}

#[test]
fn rotating_a_key_with_both_roles_moves_both() {
    let (auth, auth2) = (key(1), key(4));
    let mut c = Chain::new(&auth, &[&auth]);
    let l = list(&auth, "1");
    c.ok(&auth, T + 1, anchor(&l));
    c.ok(&auth, T + 2, c.rotate(&auth, &auth2));
    // The old key can write in neither role.
    assert_eq!(
        c.refused(&auth, T + 3, accredit(&key(9))),
        RuleError::NotAuthority(id(&auth))
    );
    assert!(matches!(
        c.refused(&auth, T + 3, Token::new(&auth, &l, &[]).action(1)),
        RuleError::Rotated { .. }
    ));
    // The new key has both.
    assert!(c.state.authorities.contains(&id(&auth2)));
    assert!(c.state.accredited(&id(&auth2), "transcript", T + 2));
    assert_eq!(c.state.lists[&l].owner, id(&auth2));
    c.ok(&auth2, T + 3, Token::new(&auth2, &l, &[(1, 1)]).action(1));
    c.ok(&auth2, T + 4, accredit(&key(9)));
}

#[test]
fn fail_sequence_number_at_its_end() {
    let auth = key(1);
    let mut c = Chain::new(&auth, &[]);
    let last = c.state.authors.get_mut(&id(&auth)).unwrap();
    last.0 = u64::MAX;
    let e = Entry::sign(&auth, 0, T + 1, accredit(&key(2)));
    let before = c.state.clone();
    assert!(matches!(c.state.apply(&e), Err(RuleError::Field(_))));
    assert_eq!(c.state, before);
}

/// `action` (a rotate-key) with its `new_key` replaced and its proof kept.
fn retarget(action: Action, new: &SigningKey) -> Action {
    match action {
        Action::RotateKey { proof, .. } => Action::RotateKey {
            new_key: id(new),
            proof,
        },
        other => panic!("not a rotate-key: {other:?}"),
    }
}

#[test]
fn fail_rotate_key_without_proof_of_the_new_key() {
    let (auth, uni, other, victim) = (key(1), key(2), key(3), key(7));
    let mut c = Chain::new(&auth, &[&uni, &other]);
    let seq = c.next(&uni);
    let proof_for = |origin: &str, old: &SigningKey, seq: u64| {
        Action::rotate_key(origin, &id(old), &victim, seq)
    };
    let forged = [
        // Signed by the author's own key, not the victim's.
        retarget(Action::rotate_key("reg", &id(&uni), &uni, seq), &victim),
        // The victim's signatures, but over something else: another log,
        // another old key, another sequence number.
        proof_for("other-log", &uni, seq),
        proof_for("reg", &other, seq),
        proof_for("reg", &uni, seq + 1),
        // No signature at all.
        Action::RotateKey {
            new_key: id(&victim),
            proof: String::new(),
        },
        Action::RotateKey {
            new_key: id(&victim),
            proof: "not base64!".into(),
        },
    ];
    for action in forged {
        let what = format!("{action:?}");
        let err = c.refused(&uni, T + 1, action);
        assert!(
            matches!(&err, RuleError::RotationProof { new_key, .. } if *new_key == id(&victim)),
            "{what}: {err}"
        );
    }
    assert!(!c.state.issuers.contains_key(&id(&victim)));
    // A proof taken from one key's rotation does not move another key.
    let for_uni = proof_for("reg", &uni, seq);
    assert!(matches!(
        c.refused(&other, T + 1, for_uni.clone()),
        RuleError::RotationProof { .. }
    ));
    // With the new key's own proof for this entry, the rotation is applied.
    c.ok(&uni, T + 1, for_uni);
    assert_eq!(
        c.state.issuers[&id(&uni)].rotated_to.as_deref(),
        Some(id(&victim).as_str())
    );
    assert!(c.state.accredited(&id(&victim), "transcript", T + 1));
}
