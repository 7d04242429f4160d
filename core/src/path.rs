//! Claim paths: which claim a holder discloses or an issuer conceals.

use std::fmt;
use std::str::FromStr;

/// One step of a [`ClaimPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// An object property.
    Key(String),
    /// An array element.
    Index(usize),
}

/// A path to a claim, written as a JSON Pointer (RFC 6901): `/courses/3`,
/// `/address/street_address`. A segment of digits addresses an array element.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClaimPath(Vec<Segment>);

/// A string that is not a claim path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim path {path:?}: {reason}")]
pub struct PathError {
    /// The input.
    pub path: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl ClaimPath {
    /// The empty path (the whole claim set).
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path from its segments.
    pub fn from_segments(segments: Vec<Segment>) -> Self {
        Self(segments)
    }

    /// This path extended by one segment.
    pub fn child(&self, segment: Segment) -> Self {
        let mut v = self.0.clone();
        v.push(segment);
        Self(v)
    }

    /// The segments.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn is_prefix_of(&self, other: &ClaimPath) -> bool {
        other.0.starts_with(&self.0)
    }

    /// Parses a JSON Pointer; the leading `/` may be left out (`courses/3`).
    ///
    /// A segment of digits too large for an index can only name an object
    /// member, so it is read as a key (as a leading zero is).
    ///
    /// # Errors
    /// [`PathError`] for an empty path, an empty segment, a bad `~` escape,
    /// or more segments than claims can nest
    /// ([`MAX_DEPTH`](crate::sd_jwt::MAX_DEPTH)), checked before any work.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let err = |reason| PathError {
            path: text.to_owned(),
            reason,
        };
        let body = text.strip_prefix('/').unwrap_or(text);
        if body.is_empty() {
            return Err(err("empty path"));
        }
        if body.split('/').count() > crate::sd_jwt::MAX_DEPTH {
            return Err(err("more segments than claims can nest"));
        }
        let mut segments = Vec::new();
        for raw in body.split('/') {
            if raw.is_empty() {
                return Err(err("empty segment"));
            }
            let mut key = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => key.push('~'),
                        Some('1') => key.push('/'),
                        _ => return Err(err("'~' must be followed by 0 or 1")),
                    }
                } else {
                    key.push(c);
                }
            }
            let is_index =
                key.bytes().all(|b| b.is_ascii_digit()) && (key == "0" || !key.starts_with('0'));
            segments.push(match key.parse::<usize>() {
                Ok(i) if is_index => Segment::Index(i),
                _ => Segment::Key(key),
            });
        }
        Ok(Self(segments))
    }
}

impl FromStr for ClaimPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.0 {
            f.write_str("/")?;
            match segment {
                Segment::Key(k) => f.write_str(&k.replace('~', "~0").replace('/', "~1"))?,
                Segment::Index(i) => write!(f, "{i}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_round_trip() {
        for text in [
            "/courses/3",
            "/address/street_address",
            "/a~1b/c~0d",
            "/x/0/y",
        ] {
            let path = ClaimPath::parse(text).unwrap();
            assert_eq!(path.to_string(), text);
        }
        assert_eq!(
            ClaimPath::parse("courses/3").unwrap().to_string(),
            "/courses/3"
        );
        assert_eq!(
            ClaimPath::parse("/c/3").unwrap().segments(),
            &[Segment::Key("c".into()), Segment::Index(3)]
        );
        // Leading zeros are a key, not an index.
        assert_eq!(
            ClaimPath::parse("/c/03").unwrap().segments()[1],
            Segment::Key("03".into())
        );
    }

    #[test]
    fn broken_paths() {
        for bad in ["", "/", "//a", "/a//b", "/a~2", "/a~"] {
            assert!(ClaimPath::parse(bad).is_err(), "{bad:?}");
        }
        let deepest = "/a".repeat(crate::sd_jwt::MAX_DEPTH);
        assert_eq!(
            ClaimPath::parse(&deepest).unwrap().segments().len(),
            crate::sd_jwt::MAX_DEPTH
        );
        let too_deep = format!("{deepest}/a");
        assert_eq!(
            ClaimPath::parse(&too_deep).unwrap_err().reason,
            "more segments than claims can nest"
        );
    }
}
