//! Many presentations at once: `Checker::check_many` (one batch equation
//! on the caller's thread) and `CheckPool` (worker threads taking what is
//! queued), each answer the one `Checker::check` gives.

use std::sync::Arc;

use vouch_core::presentation_request::PresentationRequest;
use vouch_verifier::{
    Ask, CheckPool, Checked, Headline, Input, Presented, Verifier, VerifierError,
};

use crate::common::Fixture;

/// `text` with one character of its `part`-th `~`-separated part's
/// signature changed (part 0 is the issuer JWT, the last the KB-JWT).
fn broken_signature(text: &str, part: usize) -> String {
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    let mut jws: Vec<char> = parts[part].chars().collect();
    let at = jws.len() - 10;
    jws[at] = if jws[at] == 'A' { 'B' } else { 'A' };
    parts[part] = jws.into_iter().collect();
    parts.join("~")
}

fn request(v: &Verifier) -> PresentationRequest {
    v.request(Vec::new(), vouch_verifier::now()).unwrap()
}

fn ask(r: &PresentationRequest) -> Ask {
    Ask {
        aud: None,
        nonce: Some(r.nonce().to_owned()),
    }
}

async fn presented(text: &str) -> Presented {
    Input::from_text(text).unwrap().resolve().await.unwrap()
}

/// Six presentations for `v`: valid, issuer signature broken, valid,
/// KB-JWT signature broken, valid, and the first one again (a replay of
/// its request), each with what it asks.
async fn mixed(f: &Fixture, v: &Verifier) -> Vec<(Presented, Ask)> {
    let mut out = Vec::new();
    for i in 0..5 {
        let r = request(v);
        let text = f.present(0, r.aud(), r.nonce());
        let kb = text.split('~').count() - 1;
        let text = match i {
            1 => broken_signature(&text, 0),
            3 => broken_signature(&text, kb),
            _ => text,
        };
        out.push((presented(&text).await, ask(&r)));
    }
    let replay = out[0].clone();
    out.push(replay);
    out
}

/// What `mixed` gives, in order.
fn assert_mixed(results: &[Result<Checked, String>]) {
    assert_eq!(results.len(), 6);
    for (i, r) in results.iter().enumerate() {
        let c = r.as_ref().unwrap();
        let reason = c.reason.clone().unwrap_or_default();
        match i {
            0 | 2 | 4 => assert_eq!(c.headline, Headline::Valid, "{i}: {reason}"),
            1 => assert!(reason.starts_with("issuer signature"), "{i}: {reason}"),
            3 => assert!(reason.starts_with("holder binding"), "{i}: {reason}"),
            _ => assert!(reason.starts_with("nonce: replayed"), "{i}: {reason}"),
        }
        if i % 2 == 1 {
            assert_eq!(c.headline, Headline::NotValid, "{i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_many_gives_each_presentation_the_verdict_check_gives() {
    let f = Fixture::new("many").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let items = mixed(&f, &v).await;
    let (checker, _replica) = v.into_parts();
    let refs: Vec<_> = items.iter().map(|(p, a)| (&view, p, a)).collect();
    let results: Vec<_> = checker
        .check_many(&refs, vouch_verifier::now())
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    assert_mixed(&results);

    // All valid: the one equation holds, and each is valid.
    let f2 = Fixture::new("many-valid").await;
    let v = f2.verifier("hr").await;
    let view = v.view().unwrap();
    let mut items = Vec::new();
    for _ in 0..4 {
        let r = request(&v);
        items.push((presented(&f2.present(0, r.aud(), r.nonce())).await, ask(&r)));
    }
    let (checker, _replica) = v.into_parts();
    let refs: Vec<_> = items.iter().map(|(p, a)| (&view, p, a)).collect();
    for r in checker.check_many(&refs, vouch_verifier::now()) {
        assert_eq!(r.unwrap().headline, Headline::Valid);
    }
    // Nothing to check: nothing checked.
    assert!(checker.check_many(&[], vouch_verifier::now()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_that_cannot_be_checked_fails_alone() {
    let f = Fixture::new("many-err").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let r = request(&v);
    let good = presented(&f.present(0, r.aud(), r.nonce())).await;
    let r2 = request(&v);
    let other = presented(&f.present(0, r2.aud(), r2.nonce())).await;
    // An audience that is not the request's: the check cannot be made.
    let mismatch = Ask {
        aud: Some("https://other.example".into()),
        nonce: Some(r2.nonce().to_owned()),
    };
    let (checker, _replica) = v.into_parts();
    let good_ask = ask(&r);
    let results = checker.check_many(
        &[(&view, &other, &mismatch), (&view, &good, &good_ask)],
        vouch_verifier::now(),
    );
    assert!(matches!(results[0], Err(VerifierError::Audience { .. })));
    assert_eq!(results[1].as_ref().unwrap().headline, Headline::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_answers_each_submission_with_its_own_verdict() {
    let f = Fixture::new("pool").await;
    let v = f.verifier("hr").await;
    let view = Arc::new(v.view().unwrap());
    let items = mixed(&f, &v).await;
    let (checker, _replica) = v.into_parts();
    let pool = CheckPool::new(Arc::new(checker), Some(2), 4).unwrap();
    // Submitted together, awaited together; the replay is submitted after
    // its original has been answered (the order of redemption within a
    // batch is the submissions' order, across workers it is not defined).
    let pending: Vec<_> = items[..5]
        .iter()
        .map(|(p, a)| pool.submit(Arc::clone(&view), p.clone(), a.clone()))
        .collect();
    let mut results = Vec::new();
    for p in pending {
        results.push(p.wait().await.map_err(|e| e.to_string()));
    }
    let (p, a) = items[5].clone();
    results.push(
        pool.submit(Arc::clone(&view), p, a)
            .wait()
            .await
            .map_err(|e| e.to_string()),
    );
    assert_mixed(&results);
    let stats = pool.stats();
    assert_eq!(stats.presentations, 6);
    assert!(stats.batches >= 2 && stats.batches <= 6, "{stats:?}");

    // From a plain thread, blocking.
    let r = pool
        .checker()
        .request(Vec::new(), vouch_verifier::now())
        .unwrap();
    let p = presented(&f.present(0, r.aud(), r.nonce())).await;
    let pool = Arc::new(pool);
    let checked = {
        let (pool, view, a) = (Arc::clone(&pool), Arc::clone(&view), ask(&r));
        std::thread::spawn(move || pool.submit(view, p, a).wait_blocking())
            .join()
            .unwrap()
            .unwrap()
    };
    assert_eq!(checked.headline, Headline::Valid, "{:?}", checked.reason);

    // Dropped with work queued: the workers finish it first.
    let mut pending = Vec::new();
    for _ in 0..8 {
        let r = pool
            .checker()
            .request(Vec::new(), vouch_verifier::now())
            .unwrap();
        let p = presented(&f.present(0, r.aud(), r.nonce())).await;
        pending.push(pool.submit(Arc::clone(&view), p, ask(&r)));
    }
    drop(Arc::into_inner(pool).unwrap());
    for p in pending {
        assert_eq!(p.wait().await.unwrap().headline, Headline::Valid);
    }
}
