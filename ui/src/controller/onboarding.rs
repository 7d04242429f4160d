//! First run: a new passphrase (twice, with a strength hint), the recovery
//! phrase shown once and three of its words asked back; or a restore from
//! the phrase.

use rand_core::CryptoRngCore;
use vouch_wallet::keys::RecoveryPhrase;

/// Shortest passphrase accepted.
pub const MIN_LENGTH: usize = 8;

/// How strong a passphrase looks, and what would make it stronger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Strength {
    /// 0 (weak) to 4 (strong).
    pub score: u8,
    /// A hint in plain words.
    pub hint: String,
}

/// A rough strength estimate: length, character variety and words. It
/// guides; only [`MIN_LENGTH`] is enforced.
pub fn strength(passphrase: &str) -> Strength {
    let chars = passphrase.chars().count();
    if chars == 0 {
        return Strength {
            score: 0,
            hint: format!("At least {MIN_LENGTH} characters; four or more random words are best."),
        };
    }
    let classes = [
        passphrase.chars().any(|c| c.is_lowercase()),
        passphrase.chars().any(|c| c.is_uppercase()),
        passphrase.chars().any(|c| c.is_ascii_digit()),
        passphrase.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    let words = passphrase.split_whitespace().count();
    let distinct = {
        let mut seen: Vec<char> = passphrase.chars().collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    };
    let mut score: u8 = match chars {
        0..=7 => 0,
        8..=11 => 1,
        12..=19 => 2,
        _ => 3,
    };
    if classes >= 3 || words >= 4 {
        score += 1;
    }
    if distinct < 5 {
        score = score.min(1);
    }
    let score = score.min(4);
    let hint = if chars < MIN_LENGTH {
        format!("Too short: at least {MIN_LENGTH} characters.")
    } else if distinct < 5 {
        "Too repetitive: use more different characters.".to_owned()
    } else if score < 3 {
        "Could be stronger: make it longer, or use four or more random words.".to_owned()
    } else {
        "Strong.".to_owned()
    };
    Strength { score, hint }
}

/// Why a new passphrase was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// Shorter than [`MIN_LENGTH`].
    #[error("the passphrase needs at least {MIN_LENGTH} characters")]
    TooShort,
    /// The two entries differ.
    #[error("the two passphrases differ; type the same one twice")]
    Differ,
    /// The new passphrase is the current one.
    #[error("the new passphrase is the same as the current one")]
    Same,
}

/// Checks a new passphrase typed twice.
///
/// # Errors
/// [`PassphraseError`] saying what to fix.
pub fn check_new(passphrase: &str, again: &str) -> Result<(), PassphraseError> {
    if passphrase.chars().count() < MIN_LENGTH {
        return Err(PassphraseError::TooShort);
    }
    if passphrase != again {
        return Err(PassphraseError::Differ);
    }
    Ok(())
}

/// Three positions of the phrase asked back, to be sure it was written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quiz {
    /// 1-based word positions, ascending.
    pub positions: [usize; 3],
}

/// Why the words typed back were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuizError {
    /// A word does not match.
    #[error("word {0} does not match what was shown; look at your paper copy (or show the phrase again)")]
    Mismatch(usize),
}

impl Quiz {
    /// Three distinct positions of a phrase of `words` words (at least 3).
    pub fn pick(words: usize, rng: &mut impl CryptoRngCore) -> Quiz {
        let words = words.max(3);
        let mut positions = [0usize; 3];
        let mut n = 0;
        while n < 3 {
            let p = (rng.next_u32() as usize % words) + 1;
            if !positions[..n].contains(&p) {
                positions[n] = p;
                n += 1;
            }
        }
        positions.sort_unstable();
        Quiz { positions }
    }

    /// Checks `answers` (in the order of [`Quiz::positions`]) against the
    /// phrase, ignoring case and surrounding spaces.
    ///
    /// # Errors
    /// [`QuizError::Mismatch`] naming the first wrong position.
    pub fn check(&self, phrase: &RecoveryPhrase, answers: [&str; 3]) -> Result<(), QuizError> {
        let words = phrase.words();
        for (&position, answer) in self.positions.iter().zip(answers) {
            let expected = words.get(position - 1).copied().unwrap_or_default();
            if !answer.trim().eq_ignore_ascii_case(expected) {
                return Err(QuizError::Mismatch(position));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn strength_grows_with_length_and_variety() {
        assert_eq!(strength("").score, 0);
        assert_eq!(strength("abc").score, 0);
        assert!(strength("abc").hint.contains("Too short"));
        assert_eq!(strength("aaaaaaaaaaaaaaaaaaaaaaa").score, 1);
        assert!(strength("aaaaaaaaaaaaaaaaaaaaaaa")
            .hint
            .contains("repetitive"));
        assert!(strength("correct horse battery staple").score >= 3);
        assert_eq!(strength("correct horse battery staple").hint, "Strong.");
        assert!(strength("Tr0ub4dor&3x").score > strength("troubadorx").score);
    }

    #[test]
    fn fail_new_passphrase_short_or_different() {
        assert_eq!(check_new("short", "short"), Err(PassphraseError::TooShort));
        assert_eq!(
            check_new("long enough", "long enougH"),
            Err(PassphraseError::Differ)
        );
        assert_eq!(check_new("long enough", "long enough"), Ok(()));
    }

    #[test]
    fn quiz_accepts_the_words_in_any_case_and_refuses_a_wrong_one() {
        let mut rng = StdRng::seed_from_u64(5);
        let phrase = RecoveryPhrase::generate(&mut rng);
        let quiz = Quiz::pick(24, &mut rng);
        let p = quiz.positions;
        assert!(p[0] < p[1] && p[1] < p[2] && p[2] <= 24 && p[0] >= 1);
        let words = phrase.words();
        let upper = words[p[1] - 1].to_uppercase();
        let right = [words[p[0] - 1], upper.as_str(), words[p[2] - 1]];
        assert_eq!(quiz.check(&phrase, right), Ok(()));
        let wrong = [words[p[0] - 1], words[p[1] - 1], "zoo zoo"];
        assert_eq!(quiz.check(&phrase, wrong), Err(QuizError::Mismatch(p[2])));
        assert_eq!(
            quiz.check(&phrase, ["", "", ""]),
            Err(QuizError::Mismatch(p[0]))
        );
    }
}
