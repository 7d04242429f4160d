//! The chain's log maths against published vectors: the transparency-dev
//! Merkle inclusion and consistency cases (`tests/vectors/merkle`), the RFC
//! 6962 reference tree, and the C2SP signed-note example key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde_json::Value;
use vouch_core::log::{
    cosign, node_vkey, parse_vkey, record_hash, sign_block, verify_consistency, verify_inclusion,
    witness_vkey, Block, CheckpointError, Hash, MemoryHashes, PolicyError, TrustPolicy,
    MAX_WITNESSES,
};

use crate::common::vectors_dir;

fn hash(v: &Value) -> Option<Hash> {
    let bytes = STANDARD.decode(v.as_str()?).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// A proof list; `None` when an element is not a 32-byte hash (which the
/// vectors use for "garbage" cases).
fn proof(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items.iter().map(hash).collect(),
        _ => None,
    }
}

fn cases(kind: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let root = vectors_dir().join("merkle").join(kind);
    for dir in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((
                path.display().to_string(),
                serde_json::from_str(&text).unwrap(),
            ));
        }
    }
    assert!(
        out.len() >= 7,
        "{kind} vectors missing under {}",
        root.display()
    );
    out
}

#[test]
fn merkle_inclusion_vectors() {
    for (name, case) in cases("inclusion") {
        let want_err = case["wantErr"].as_bool().unwrap();
        let result = (|| {
            let p = proof(&case["proof"])?;
            let root = hash(&case["root"])?;
            let leaf = hash(&case["leafHash"])?;
            let size = case["treeSize"].as_u64()?;
            let index = case["leafIdx"].as_u64()?;
            verify_inclusion(&p, size, root, index, leaf).ok()
        })();
        assert_eq!(result.is_none(), want_err, "{name}");
    }
}

#[test]
fn merkle_consistency_vectors() {
    for (name, case) in cases("consistency") {
        let want_err = case["wantErr"].as_bool().unwrap();
        let result = (|| {
            let p = proof(&case["proof"])?;
            verify_consistency(
                &p,
                case["size1"].as_u64()?,
                hash(&case["root1"])?,
                case["size2"].as_u64()?,
                hash(&case["root2"])?,
            )
            .ok()
        })();
        assert_eq!(result.is_none(), want_err, "{name}");
    }
}

#[test]
fn rfc6962_reference_tree_roots() {
    let text = std::fs::read_to_string(vectors_dir().join("merkle/reference_tree.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut tree = MemoryHashes::new();
    assert_eq!(
        hex::encode(tree.root().unwrap().0),
        v["empty_root_hex"].as_str().unwrap()
    );
    let roots = v["roots_hex"].as_array().unwrap();
    for (leaf, root) in v["leaf_inputs_hex"].as_array().unwrap().iter().zip(roots) {
        tree.append(record_hash(&hex::decode(leaf.as_str().unwrap()).unwrap()))
            .unwrap();
        assert_eq!(hex::encode(tree.root().unwrap().0), root.as_str().unwrap());
    }
}

#[test]
fn signed_note_example_key() {
    // The example verifier key of C2SP signed-note and Go's sumdb/note.
    let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    let (name, alg, key) = parse_vkey(vkey).unwrap();
    assert_eq!((name.as_str(), alg), ("PeterNeumann", 1));
    assert_eq!(node_vkey(&name, &key), vkey);
}

fn witness_keys(n: u8) -> Vec<(String, SigningKey)> {
    (1..=n)
        .map(|i| (format!("w{i}"), SigningKey::from_bytes(&[100 + i; 32])))
        .collect()
}

fn policy_of(
    node: &SigningKey,
    witnesses: &[(String, SigningKey)],
    need: usize,
    force: bool,
) -> Result<TrustPolicy, PolicyError> {
    TrustPolicy::new(
        ("log.example/registry".into(), node.verifying_key()),
        witnesses
            .iter()
            .map(|(n, k)| (n.clone(), k.verifying_key()))
            .collect(),
        need,
        force,
    )
}

#[test]
fn trust_policies_need_a_strict_majority_unless_forced() {
    let node = SigningKey::from_bytes(&[1; 32]);
    for n in 1..=5u8 {
        let w = witness_keys(n);
        for need in 0..=usize::from(n) {
            let weak = 2 * need <= usize::from(n);
            let got = policy_of(&node, &w, need, false);
            match got {
                Err(PolicyError::WeakQuorum { majority, .. }) => {
                    assert!(weak, "{need} of {n}");
                    assert_eq!(majority, usize::from(n) / 2 + 1);
                }
                Ok(_) => assert!(!weak, "{need} of {n} was accepted"),
                Err(e) => panic!("{need} of {n}: {e}"),
            }
            policy_of(&node, &w, need, true).unwrap();
        }
        assert!(matches!(
            policy_of(&node, &w, usize::from(n) + 1, true),
            Err(PolicyError::NeedTooHigh { .. })
        ));
    }
    let err = policy_of(&node, &witness_keys(2), 1, false).unwrap_err();
    assert!(err.to_string().contains("fork"), "{err}");
    // The node's key alone: no witness quorum to split.
    policy_of(&node, &[], 0, false).unwrap();
    // One witness listed twice would count twice.
    let mut twice = witness_keys(2);
    twice.push(("w3".into(), twice[0].1.clone()));
    assert!(matches!(
        policy_of(&node, &twice, 3, false),
        Err(PolicyError::DuplicateWitness(_))
    ));
    twice[2].0 = "w1".into();
    twice[2].1 = SigningKey::from_bytes(&[9; 32]);
    assert!(policy_of(&node, &twice, 3, false).is_err());
    let many = (0..=MAX_WITNESSES)
        .map(|i| {
            (
                format!("w{i}"),
                SigningKey::from_bytes(&[u8::try_from(i).unwrap(); 32]),
            )
        })
        .collect::<Vec<_>>();
    assert!(matches!(
        policy_of(&node, &many, MAX_WITNESSES, false),
        Err(PolicyError::TooManyWitnesses(_))
    ));
}

/// A signature line under `name` and key id `id` that verifies under no key.
fn junk_line(name: &str, id: &[u8], n: u8) -> String {
    let mut raw = id.to_vec();
    raw.extend([n; 72]);
    format!("— {name} {}\n", STANDARD.encode(raw))
}

/// The key id bytes of the last signature line of a note.
fn last_id(note: &str) -> Vec<u8> {
    let line = note.trim_end().lines().last().unwrap();
    STANDARD.decode(line.rsplit(' ').next().unwrap()).unwrap()[..4].to_vec()
}

#[test]
fn unverifiable_signature_lines_are_ignored_and_never_merged() {
    let node = SigningKey::from_bytes(&[1; 32]);
    let w = witness_keys(3);
    let policy = policy_of(&node, &w, 2, false).unwrap();
    let block = Block {
        origin: "log.example/registry".into(),
        height: 1,
        time: 1_780_000_000,
        prev: Hash([3; 32]),
        size: 4,
        root: Hash([5; 32]),
    };
    let signed = sign_block(&block, &node).unwrap();
    let by = |i: usize, t: u64| cosign(&signed, &w[i].0, &w[i].1, t).unwrap();
    let w1_id = last_id(&by(0, 1));
    let w2_id = last_id(&by(1, 1));

    // Junk under a trusted witness's name and id, ahead of the valid lines,
    // and junk under unknown names: ignored; two valid cosignatures count.
    let mut note = signed.clone();
    note.push_str(&junk_line("w1", &w1_id, 1));
    note.push_str(&junk_line("stranger", &[1, 2, 3, 4], 2));
    let with_junk = format!("{note}{}", &by(0, 5)[signed.len()..]);
    let with_junk = format!("{with_junk}{}", &by(1, 5)[signed.len()..]);
    let ok = policy.verify(with_junk.as_bytes()).unwrap();
    assert_eq!(ok.cosigned_by, vec!["w1".to_string(), "w2".to_string()]);
    // Junk alone counts for nothing.
    assert!(matches!(
        policy.verify(note.as_bytes()),
        Err(CheckpointError::Cosignatures { got: 0, need: 2 })
    ));
    // A junk line under the node's own name does not stand in for it.
    let unsigned = signed.replace(
        signed.trim_end().lines().last().unwrap(),
        junk_line("log.example/registry", &[0; 4], 3).trim_end(),
    );
    assert!(policy.verify(unsigned.as_bytes()).is_err());

    // Merging keeps only valid lines, one per witness, first one wins.
    let merged = policy
        .merge_cosignatures(&by(0, 1), &with_junk)
        .unwrap()
        .unwrap();
    assert_eq!(merged.matches("\n— ").count(), 3, "{merged}");
    assert!(
        merged.starts_with(&by(0, 1)),
        "w1's first cosignature is kept"
    );
    assert_eq!(
        policy.merge_cosignatures(&merged, &with_junk).unwrap(),
        None
    );
    assert_eq!(policy.merge_cosignatures(&merged, &by(0, 9)).unwrap(), None);
    let mut only_junk = signed.clone();
    for i in 0..98 {
        only_junk.push_str(&junk_line("w2", &w2_id, i));
    }
    assert_eq!(
        policy.merge_cosignatures(&signed, &only_junk).unwrap(),
        None
    );
    // Another checkpoint's cosignature is refused.
    let other = sign_block(&Block { size: 5, ..block }, &node).unwrap();
    assert!(policy.merge_cosignatures(&signed, &other).is_err());
    // Verifier keys of these witnesses parse back to the policy's.
    assert_eq!(
        parse_vkey(&witness_vkey("w1", &w[0].1.verifying_key()))
            .unwrap()
            .2,
        policy.witnesses()[0].1
    );
}
