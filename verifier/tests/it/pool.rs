//! Many presentations at once: `Checker::check_many` (one batch equation
//! on the caller's thread) and `CheckPool` (worker threads taking what is
//! queued), each answer the one `Checker::check` gives.

use std::sync::Arc;

use vouch_core::presentation_request::PresentationRequest;
use vouch_verifier::{
    Ask, CheckPool, Checked, Checker, Headline, Input, PoolError, Presented, Verifier,
    VerifierError,
};

use crate::common::{ask, broken_signature, Fixture};

fn request(v: &Verifier) -> PresentationRequest {
    v.request(Vec::new(), vouch_verifier::now()).unwrap()
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
    let pool = CheckPool::new(Arc::new(checker), Some(2), 4, 64).unwrap();
    // Submitted together, awaited together; the replay is submitted after
    // its original has been answered (the order of redemption within a
    // batch is the submissions' order, across workers it is not defined).
    let pending: Vec<_> = items[..5]
        .iter()
        .map(|(p, a)| {
            pool.submit(Arc::clone(&view), p.clone(), a.clone())
                .unwrap()
        })
        .collect();
    let mut results = Vec::new();
    for p in pending {
        results.push(p.wait().await.map_err(|e| e.to_string()));
    }
    let (p, a) = items[5].clone();
    results.push(
        pool.submit(Arc::clone(&view), p, a)
            .unwrap()
            .wait()
            .await
            .map_err(|e| e.to_string()),
    );
    assert_mixed(&results);
    let stats = pool.stats();
    assert_eq!(stats.presentations, 6);
    // The replay went in a batch of its own, after the first five.
    assert!(stats.batches >= 2, "{stats:?}");

    // From a plain thread, blocking.
    let r = pool
        .checker()
        .request(Vec::new(), vouch_verifier::now())
        .unwrap();
    let p = presented(&f.present(0, r.aud(), r.nonce())).await;
    let pool = Arc::new(pool);
    let checked = {
        let (pool, view, a) = (Arc::clone(&pool), Arc::clone(&view), ask(&r));
        std::thread::spawn(move || pool.submit(view, p, a).unwrap().wait_blocking())
            .join()
            .unwrap()
            .unwrap()
    };
    assert_eq!(checked.headline, Headline::Valid, "{:?}", checked.reason);

    // Dropped with work queued: the workers finish it first (inputs made
    // first, then submitted in a tight loop, so most are still queued).
    let mut inputs = Vec::new();
    for _ in 0..8 {
        let r = pool
            .checker()
            .request(Vec::new(), vouch_verifier::now())
            .unwrap();
        inputs.push((presented(&f.present(0, r.aud(), r.nonce())).await, ask(&r)));
    }
    let pending: Vec<_> = inputs
        .into_iter()
        .map(|(p, a)| pool.submit(Arc::clone(&view), p, a).unwrap())
        .collect();
    let before = pool.stats().presentations;
    drop(Arc::into_inner(pool).unwrap());
    for p in pending {
        assert_eq!(p.wait().await.unwrap().headline, Headline::Valid);
    }
    assert!(before < 14, "most were still queued at the drop ({before})");
}

/// `n` fresh requests of `checker`'s, each with a presentation answering it.
async fn answered(f: &Fixture, checker: &Checker, n: usize) -> Vec<(Presented, Ask)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = checker.request(Vec::new(), vouch_verifier::now()).unwrap();
        out.push((presented(&f.present(0, r.aud(), r.nonce())).await, ask(&r)));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_and_a_withdrawn_submission_is_not_checked() {
    let f = Fixture::new("pool-busy").await;
    let v = f.verifier("hr").await;
    let view = Arc::new(v.view().unwrap());
    let (checker, _replica) = v.into_parts();
    let checker = Arc::new(checker);

    // One worker checking one at a time, at most two waiting: of twenty
    // submitted at once, some are refused, and each accepted is answered.
    let items = answered(&f, &checker, 20).await;
    let pool = CheckPool::new(Arc::clone(&checker), Some(1), 1, 2).unwrap();
    let mut pending = Vec::new();
    let mut busy = 0;
    for (p, a) in items {
        match pool.submit(Arc::clone(&view), p, a) {
            Ok(answer) => pending.push(answer),
            Err(PoolError::Busy(n)) => {
                assert_eq!(n, 2);
                busy += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 0, "no submission was refused");
    for p in pending {
        assert_eq!(p.wait().await.unwrap().headline, Headline::Valid);
    }

    // Withdrawn: submitted, then the answer dropped before a worker took
    // it. It is not checked, so its request stays open: checked again, it
    // is valid, not a replay. (The worker takes one at a time, each taking
    // milliseconds: most of ten dropped at once are still queued.)
    let items = answered(&f, &checker, 10).await;
    let pool = CheckPool::new(Arc::clone(&checker), Some(1), 1, 64).unwrap();
    let withdrawn: Vec<_> = items
        .iter()
        .map(|(p, a)| {
            pool.submit(Arc::clone(&view), p.clone(), a.clone())
                .unwrap()
        })
        .collect();
    drop(withdrawn);
    drop(pool);
    let still_open = items
        .iter()
        .filter(|(p, a)| {
            checker
                .check(&view, p, a, vouch_verifier::now())
                .unwrap()
                .is_valid()
        })
        .count();
    assert!(
        still_open >= 5,
        "only {still_open} of 10 withdrawn stayed open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn places_held_count_against_the_queue_and_are_given_back() {
    let f = Fixture::new("pool-slots").await;
    let v = f.verifier("hr").await;
    let view = Arc::new(v.view().unwrap());
    let (checker, _replica) = v.into_parts();
    let checker = Arc::new(checker);
    let mut items = answered(&f, &checker, 2).await.into_iter();
    let pool = CheckPool::new(Arc::clone(&checker), Some(1), 8, 2).unwrap();
    let a = pool.reserve().unwrap();
    let b = pool.reserve().unwrap();
    assert!(matches!(pool.reserve(), Err(PoolError::Busy(2))));
    let (p, k) = items.next().unwrap();
    assert!(matches!(
        pool.submit(Arc::clone(&view), p.clone(), k.clone()),
        Err(PoolError::Busy(2))
    ));
    // One given back unused: a submission fits.
    drop(a);
    let first = pool.submit(Arc::clone(&view), p, k).unwrap();
    // The other used.
    let (p, k) = items.next().unwrap();
    let second = b.submit(Arc::clone(&view), p, k);
    for answer in [first, second] {
        assert_eq!(answer.wait().await.unwrap().headline, Headline::Valid);
    }
    // Both answered: the queue is empty, and nothing is held.
    let c = pool.reserve().unwrap();
    let d = pool.reserve().unwrap();
    drop((c, d));
}
