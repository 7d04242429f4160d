//! The chain's log maths against published vectors: the transparency-dev
//! Merkle inclusion and consistency cases (`tests/vectors/merkle`), the RFC
//! 6962 reference tree, and the C2SP signed-note example key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use vouch_core::log::{
    node_vkey, parse_vkey, record_hash, verify_consistency, verify_inclusion, Hash, MemoryHashes,
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
